package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/telemetry"
)

func benchEvent(at time.Time) telemetry.Event {
	return telemetry.Event{
		ReceivedAt: at, TS: at, Name: "canvas.stroke", Level: "debug", UserID: "user-42", SessionID: "s-42",
		Props: []byte(`{"tool":"pen","points":12,"ms":3}`), UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
		ClientHash: make([]byte, telemetry.ClientHashBytes),
	}
}

// BenchmarkTelemetryStore measures events stored per second: the buffered writer (events
// submitted 20 at a time, as requests do, flushed by COPY in batches of 1,000) beside a raw
// pgx CopyFrom of the same rows in batches of 1,000.
func BenchmarkTelemetryStore(b *testing.B) {
	pool := dbtest.New(b)
	ctx := context.Background()
	now := time.Now()
	if _, err := telemetry.NewPGStore(pool).EnsurePartitions(ctx, now, 1); err != nil {
		b.Fatal(err)
	}
	ev := benchEvent(now)
	b.Run("baseline", func(b *testing.B) {
		cols := []string{"received_at", "name", "ts", "level", "user_id", "session_id", "props", "user_agent", "client_hash"}
		row := []any{ev.ReceivedAt, ev.Name, ev.TS, ev.Level, ev.UserID, ev.SessionID, ev.Props, ev.UserAgent, ev.ClientHash}
		rows := make([][]any, 1000)
		for i := range rows {
			rows[i] = row
		}
		b.ResetTimer()
		start := time.Now()
		for done := 0; done < b.N; done += len(rows) {
			n := min(len(rows), b.N-done)
			if _, err := pool.CopyFrom(ctx, pgx.Identifier{"telemetry_events"}, cols, pgx.CopyFromRows(rows[:n])); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("writer", func(b *testing.B) {
		w := telemetry.NewWriter(telemetry.NewPGStore(pool), telemetry.WriterOptions{
			BufferEvents: 50_000, FlushEvents: 1000, FlushInterval: 100 * time.Millisecond,
		}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		req := make([]telemetry.Event, 20)
		for i := range req {
			req[i] = ev
		}
		b.ResetTimer()
		start := time.Now()
		for done := 0; done < b.N; {
			n := min(len(req), b.N-done)
			// The writer drops when full; a benchmark wants every event, so offer the rest again.
			if dropped := w.Submit(req[:n]); dropped > 0 {
				time.Sleep(100 * time.Microsecond)
				n -= dropped
			}
			done += n
		}
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
}
