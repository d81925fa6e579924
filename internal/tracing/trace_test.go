package tracing_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/natsbus"
	"github.com/m4sh/backend/internal/presence"
	"github.com/m4sh/backend/internal/solo"
	"github.com/m4sh/backend/internal/tracing"
	"github.com/m4sh/backend/internal/tracing/tracetest"
)

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.GetStringValue()
		}
	}
	return ""
}

func tracedEnv(t *testing.T) (*apptest.Env, *tracetest.Receiver, func()) {
	rec := tracetest.NewReceiver(t)
	env := apptest.New(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rec.URL})
	if !env.App.Tracing.Enabled() {
		t.Fatal("tracing is off with an endpoint set")
	}
	return env, rec, func() {
		if err := env.App.Tracing.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRESTCallTrace(t *testing.T) {
	env, rec, flush := tracedEnv(t)
	r := env.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/me/", Token: env.Token("alice"),
		Header: map[string]string{"X-Request-Id": "req-trace-1"}})
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/me/ = %d", r.Status)
	}
	// The route pattern is matched inside the API middleware, on a copy of the request, so
	// the server span keeps otelhttp's method-only name; X-Request-Id ties it to the logs.
	server := rec.Find(t, flush, "GET")
	if server.Kind != tracepb.Span_SPAN_KIND_SERVER || len(server.ParentSpanId) != 0 {
		t.Fatalf("server span kind %v parent %x", server.Kind, server.ParentSpanId)
	}
	if got := attr(server, "http.request_id"); got != "req-trace-1" {
		t.Errorf("http.request_id = %q", got)
	}
	if got, want := rec.Children(server), []string{"db UserUpsert"}; !slices.Equal(got, want) {
		t.Errorf("children of the server span = %v, want %v (all: %s)", got, want, rec.Names())
	}
}

func TestSnapshotUploadTrace(t *testing.T) {
	env, rec, flush := tracedEnv(t)
	tok := env.Token("bob")
	r := env.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/", Token: tok, Body: map[string]any{"title": "scene"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating a session = %d", r.Status)
	}
	sid := r.JSON(t)["id"].(string)
	r = env.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/" + sid + "/snapshot/", Token: tok,
		Body: []byte(`{"scene":1}`), Header: map[string]string{"Content-Type": "application/octet-stream", "X-Request-Id": "upload-1"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("upload = %d: %s", r.Status, r.Body)
	}
	put := rec.Find(t, flush, "blob put")
	server := rec.Parent(put)
	if server == nil || server.Name != "POST" || attr(server, "http.request_id") != "upload-1" {
		t.Fatalf("blob put's parent is not the upload's server span: %s", rec.Names())
	}
	kids := rec.Children(server)
	if !slices.Contains(kids, "blob put") || !slices.ContainsFunc(kids, func(n string) bool { return strings.HasPrefix(n, "db Snapshot") }) {
		t.Errorf("children of the upload span = %v: want blob put and the snapshot statements", kids)
	}
}

func TestGCJobTrace(t *testing.T) {
	env, rec, flush := tracedEnv(t)
	ctx, span := env.App.Tracing.Tracer().Start(context.Background(), "m4sh gc snapshots")
	res, err := env.App.River.Insert(ctx, solo.CleanupArgs{}, nil)
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := solo.Await(context.Background(), env.App.River.Client, res.Job.ID, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	root := rec.Find(t, flush, "m4sh gc snapshots")
	if got := rec.Children(root); !slices.Equal(got, []string{"db BEGIN", "db COMMIT", "river.insert_many"}) {
		t.Fatalf("children of the gc span = %v (all: %s)", got, rec.Names())
	}
	// River's own periodic inserts make root spans of the same name; this one is the child.
	insert := rec.Child(root, "river.insert_many")
	work := rec.Find(t, flush, "river.work/"+solo.KindCleanup)
	if len(work.Links) != 1 || !slices.Equal(work.Links[0].SpanId, insert.SpanId) || !slices.Equal(work.Links[0].TraceId, root.TraceId) {
		t.Fatalf("work span links %v, want the insert span %x of trace %x", work.Links, insert.SpanId, root.TraceId)
	}
	if kids := rec.Children(work); !slices.ContainsFunc(kids, func(n string) bool { return strings.HasPrefix(n, "db ") }) {
		t.Errorf("the work span has no statement spans: %v", kids)
	}
}

// TestWebSocketJoinAcrossNodes: a join on node A (a whole service) reaches node B (a NATS
// bus of its own, as another node's) in the same trace: upgrade server span on A → "nats
// publish" → "nats receive" on B.
func TestWebSocketJoinAcrossNodes(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	rec := tracetest.NewReceiver(t)
	f := apptest.NewClassrooms(t, map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rec.URL, "PUBSUB": "nats", "NATS_URL": ns.ClientURL(),
	})
	tpB, err := tracing.New(context.Background(), tracing.Config{Endpoint: rec.URL, ServiceName: "node-b"})
	if err != nil {
		t.Fatal(err)
	}
	busB, err := natsbus.Connect(natsbus.Options{URL: ns.ClientURL(), Node: uuid.New(), Tracing: tpB})
	if err != nil {
		t.Fatal(err)
	}
	defer busB.Close()
	joins := make(chan *presence.Event, 4)
	defer busB.Subscribe(f.Session.Id, func(e *presence.Event) {
		if e.Kind == presence.KindJoin {
			joins <- e
		}
	})()
	// The subscription must reach the server before A publishes.
	if err := busB.Check(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	url := "ws" + strings.TrimPrefix(f.Env.Server.URL, "http") + "/ws/classroom/" + f.Class.Id.String() + "/session/" + f.Session.Id.String() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{
		"Authorization": {"Bearer " + f.Mia}, "X-Request-Id": {"ws-join-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	var e *presence.Event
	select {
	case e = <-joins:
	case <-ctx.Done():
		t.Fatal("node B saw no join")
	}
	if e.User.UserID != "mia" || !e.Trace.IsValid() {
		t.Fatalf("join on node B: user %q trace %v", e.User.UserID, e.Trace)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	flush := func() {
		_ = f.Env.App.Tracing.ForceFlush(context.Background())
		_ = tpB.ForceFlush(context.Background())
	}
	receive := rec.Find(t, flush, "nats receive")
	publish := rec.Parent(receive)
	if publish == nil || publish.Name != "nats publish" || publish.Kind != tracepb.Span_SPAN_KIND_PRODUCER {
		t.Fatalf("parent of nats receive: %v (all: %s)", publish, rec.Names())
	}
	var upgrade *tracepb.Span
	deadline := time.Now().Add(10 * time.Second)
	for upgrade = rec.Parent(publish); upgrade == nil && time.Now().Before(deadline); upgrade = rec.Parent(publish) {
		flush() // the upgrade's span ends when the connection does
		time.Sleep(20 * time.Millisecond)
	}
	if upgrade == nil || upgrade.Name != "GET" || upgrade.Kind != tracepb.Span_SPAN_KIND_SERVER || attr(upgrade, "http.request_id") != "ws-join-1" {
		t.Fatalf("parent of nats publish: %v (all: %s)", upgrade, rec.Names())
	}
	if e.Trace.TraceID().String() != hex.EncodeToString(upgrade.TraceId) {
		t.Errorf("node B's event trace %s, want %x", e.Trace.TraceID(), upgrade.TraceId)
	}
}

// The HTTP handler decides a new trace's sampling before any span exists; the ratio must
// apply once (not again in the SDK's sampler), and a caller's sampled trace context must
// still be followed.
func TestRequestSamplingRatio(t *testing.T) {
	rec := tracetest.NewReceiver(t)
	env := apptest.New(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rec.URL,
		"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"})
	flush := func() {
		if err := env.App.Tracing.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	tok := env.Token("alice")
	const n = 400
	for range n {
		if r := env.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/me/", Token: tok}); r.Status != http.StatusOK {
			t.Fatalf("GET /api/v1/me/ = %d", r.Status)
		}
	}
	flush()
	// Binomial(400, 0.5): 200 ± 10 (one sd); a ratio applied twice would give ≈ 100.
	if got := rec.Count("GET"); got < 150 || got > 250 {
		t.Errorf("%d of %d requests traced at ratio 0.5", got, n)
	}
	// A caller's sampled context is followed whatever the ratio says.
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	before := rec.Count("GET")
	for range 20 {
		r := env.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/me/", Token: tok,
			Header: map[string]string{"Traceparent": parent}})
		if r.Status != http.StatusOK {
			t.Fatalf("GET /api/v1/me/ = %d", r.Status)
		}
	}
	flush()
	if got := rec.Count("GET") - before; got != 20 {
		t.Errorf("%d of 20 requests with a sampled caller context traced", got)
	}
}
