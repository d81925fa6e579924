package natsbus

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/m4sh/backend/internal/presence"
	"github.com/m4sh/backend/internal/tracing"
)

// TestTraceHeadersOnlyOnTracedEvents: with tracing on, a join carrying a span travels with a
// traceparent header; cursor events are sent exactly as with tracing off (no header).
func TestTraceHeadersOnlyOnTracedEvents(t *testing.T) {
	t.Parallel()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	// Nothing listens there: spans are dropped at export, which this test does not need.
	tp, err := tracing.New(context.Background(), tracing.Config{Endpoint: "http://127.0.0.1:9/v1/traces"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = tp.Shutdown(ctx)
	})
	bus, err := Connect(Options{URL: srv.ClientURL(), Node: uuid.New(), Tracing: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	raw, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	session := uuid.New()
	sub, err := raw.SubscribeSync(Subject(session))
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer().Start(context.Background(), "upgrade")
	defer span.End()
	bus.Publish(session, &presence.Event{Kind: presence.KindCursor, User: presence.User{UserID: "u"}, X: 1, Y: 2})
	bus.Publish(session, &presence.Event{Kind: presence.KindJoin, User: presence.User{UserID: "u"}, Trace: span.SpanContext()})

	cursor, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(cursor.Header) != 0 {
		t.Errorf("cursor message headers %v, want none", cursor.Header)
	}
	join, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tp2 := join.Header.Get("Traceparent") // HeaderCarrier canonicalises keys
	if want := span.SpanContext().TraceID().String(); len(tp2) != 55 || tp2[3:35] != want {
		t.Errorf("join traceparent %q, want one of trace %s", tp2, want)
	}
	if _, e, _, err := decode(join.Data); err != nil || e.Kind != presence.KindJoin || e.Trace.IsValid() {
		t.Errorf("join payload: %v %v (the span travels in headers only)", e, err)
	}
}
