package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/m4sh/backend/internal/tracing"
)

func TestSpanName(t *testing.T) {
	for sql, want := range map[string]string{
		"-- name: UserUpsert :one\nINSERT INTO users": "db UserUpsert",
		"begin":                    "db BEGIN",
		"-- other\nselect 1":       "db SELECT",
		"SELECT(1)":                "db SELECT",
		"":                         "db",
		"-- only a comment":        "db",
		"averyveryverylongkeyword": "db",
	} {
		if got := tracing.SpanName(sql); got != want {
			t.Errorf("SpanName(%q) = %q, want %q", sql, got, want)
		}
	}
}

func TestLogHandlerAddsIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(tracing.NewLogHandler(slog.NewTextHandler(&buf, nil))).With("k", "v")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "in a span")
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "k=v trace_id=01000000000000000000000000000000 span_id=0200000000000000") || strings.Contains(lines[1], "trace_id") {
		t.Errorf("log lines:\n%s", buf.String())
	}
}

func TestOffIsNoop(t *testing.T) {
	p, err := tracing.New(context.Background(), tracing.Config{})
	if err != nil || p.Enabled() || tracing.NewPGX(p) != nil || tracing.River(p) != nil {
		t.Fatalf("off provider: %v %v", p, err)
	}
	if _, span := p.Tracer().Start(context.Background(), "x"); span.SpanContext().IsValid() {
		t.Error("off provider made a real span")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
