package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/telemetry"
)

type bundle struct {
	pool  *pgxpool.Pool
	store *telemetry.PGStore
	reg   *prometheus.Registry
}

func setup(t *testing.T) bundle {
	t.Helper()
	pool := dbtest.New(t)
	return bundle{pool: pool, store: telemetry.NewPGStore(pool), reg: prometheus.NewRegistry()}
}

func (b bundle) writer(t *testing.T, o telemetry.WriterOptions) *telemetry.Writer {
	t.Helper()
	w := telemetry.NewWriter(b.store, o, b.reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

func (b bundle) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM telemetry_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (b bundle) waitCount(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.count(t) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d events stored, want %d", b.count(t), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b bundle) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == labels[i] && l.GetValue() == labels[i+1] }) {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func events(n int, at time.Time) []telemetry.Event {
	out := make([]telemetry.Event, n)
	for i := range out {
		out[i] = telemetry.Event{ReceivedAt: at, TS: at, Name: fmt.Sprintf("e%03d", i), ClientHash: make([]byte, 16)}
	}
	return out
}

func TestWriterFlushesEveryNEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.writer(t, telemetry.WriterOptions{FlushEvents: 10, FlushInterval: time.Hour})
	if d := w.Submit(events(9, time.Now())); d != 0 {
		t.Fatalf("dropped %d", d)
	}
	time.Sleep(50 * time.Millisecond)
	if n := b.count(t); n != 0 {
		t.Fatalf("%d stored before FlushEvents was reached, want 0", n)
	}
	w.Submit(events(1, time.Now()))
	b.waitCount(t, 10)
}

func TestWriterFlushesEveryInterval(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.writer(t, telemetry.WriterOptions{FlushEvents: 1000, FlushInterval: 20 * time.Millisecond})
	w.Submit(events(3, time.Now()))
	b.waitCount(t, 3)
}

func TestWriterCloseFlushesEverything(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.writer(t, telemetry.WriterOptions{FlushEvents: 100_000, FlushInterval: time.Hour})
	for range 25 {
		w.Submit(events(40, time.Now()))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t); n != 1000 {
		t.Errorf("%d stored after Close, want 1000", n)
	}
	if d := w.Submit(events(2, time.Now())); d != 2 {
		t.Errorf("Submit after Close dropped %d of 2, want 2", d)
	}
}

func TestWriterDropsWhenFull(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.writer(t, telemetry.WriterOptions{BufferEvents: 5, FlushEvents: 100, FlushInterval: time.Hour})
	if d := w.Submit(events(8, time.Now())); d != 3 {
		t.Errorf("dropped %d of 8 into a buffer of 5, want 3", d)
	}
	if d := w.Submit(events(1, time.Now())); d != 1 {
		t.Errorf("dropped %d of 1 into a full buffer, want 1", d)
	}
	if got := b.metric(t, "m4sh_telemetry_events_dropped_total", "reason", "buffer_full"); got != 4 {
		t.Errorf("dropped metric = %v, want 4", got)
	}
	big := events(1, time.Now())
	big[0].Props = make([]byte, 2<<10)
	w2 := telemetry.NewWriter(b.store, telemetry.WriterOptions{BufferBytes: 4 << 10, FlushInterval: time.Hour}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer w2.Close(context.Background())
	dropped := 0
	for range 3 {
		dropped += w2.Submit(big)
	}
	if dropped != 2 {
		t.Errorf("dropped %d of three 2 KiB events into a 4 KiB buffer, want 2", dropped)
	}
}

// TestWriterCreatesMissingPartitions: rows for a day without a partition make the writer
// create it rather than fail.
func TestWriterCreatesMissingPartitions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.writer(t, telemetry.WriterOptions{FlushInterval: 20 * time.Millisecond})
	future := time.Date(2031, 5, 6, 23, 59, 0, 0, time.UTC)
	w.Submit(append(events(2, future), events(1, future.Add(2*time.Minute))...))
	b.waitCount(t, 3)
	names, err := b.store.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"telemetry_events_p20310506", "telemetry_events_p20310507"} {
		if !slices.Contains(names, want) {
			t.Errorf("partitions %v lack %s", names, want)
		}
	}
}

// TestWriterIsolatesRejectedRows: a row the database refuses is dropped alone; the rest of
// its batch is stored.
func TestWriterIsolatesRejectedRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.writer(t, telemetry.WriterOptions{FlushEvents: 10, FlushInterval: time.Hour})
	evs := events(10, time.Now())
	evs[6].Level = "fatal" // violates the level CHECK
	w.Submit(evs)
	b.waitCount(t, 9)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := b.metric(t, "m4sh_telemetry_events_dropped_total", "reason", "rejected"); got != 1 {
		t.Errorf("rejected metric = %v, want 1", got)
	}
	if got := b.metric(t, "m4sh_telemetry_events_stored_total"); got != 9 {
		t.Errorf("stored metric = %v, want 9", got)
	}
}

func TestMaintenance(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 31, 10, 0, 0, 0, time.UTC)
	// Old partitions, as if the service had run since late December.
	if _, err := b.store.EnsurePartitions(ctx, time.Date(2029, 12, 29, 0, 0, 0, 0, time.UTC), 5); err != nil {
		t.Fatal(err)
	}
	before, err := b.store.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantDropped := 0 // the 3 of December and those the migration made around the real today
	for _, n := range before {
		if n < "telemetry_events_p20300101" {
			wantDropped++
		}
	}
	m := telemetry.Maintenance{Store: b.store, Retention: 30 * 24 * time.Hour}
	created, dropped, err := m.Maintain(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	// Kept: from 2030-01-01 (30 days before the 31st); created: the 30th to Feb 3rd.
	if created != 5 || dropped != wantDropped {
		t.Errorf("Maintain = %d created, %d dropped, want 5, %d", created, dropped, wantDropped)
	}
	names, err := b.store.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"telemetry_events_p20300101", "telemetry_events_p20300102",
		"telemetry_events_p20300130", "telemetry_events_p20300131", "telemetry_events_p20300201",
		"telemetry_events_p20300202", "telemetry_events_p20300203"}
	if !slices.Equal(names, want) {
		t.Errorf("partitions = %v, want %v", names, want)
	}
	if created, dropped, err := m.Maintain(ctx, now); err != nil || created != 0 || dropped != 0 {
		t.Errorf("second Maintain = %d, %d, %v, want nothing to do", created, dropped, err)
	}
}
