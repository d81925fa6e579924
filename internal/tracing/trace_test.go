package tracing_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/solo"
)

// receiver is a loopback OTLP/HTTP collector keeping every span it is sent.
type receiver struct {
	URL   string
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{URL: "http://" + ln.Addr().String() + "/v1/traces"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var msg collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &msg)
		}
		if err != nil || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("receiver: %s %s: %v", req.Method, req.URL.Path, err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

// find returns the one span named name, waiting for it to arrive.
func (r *receiver) find(t *testing.T, flush func(), name string) *tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		flush()
		r.mu.Lock()
		var got []*tracepb.Span
		for _, s := range r.spans {
			if s.Name == name {
				got = append(got, s)
			}
		}
		r.mu.Unlock()
		if len(got) == 1 {
			return got[0]
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d spans named %q; have %s", len(got), name, r.names())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// children returns the names of the spans whose parent is p, sorted.
func (r *receiver) children(p *tracepb.Span) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.spans {
		if slices.Equal(s.ParentSpanId, p.SpanId) && slices.Equal(s.TraceId, p.TraceId) {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

func (r *receiver) names() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.spans {
		out = append(out, fmt.Sprintf("%s(%s<-%s)", s.Name, hex.EncodeToString(s.SpanId)[:6], hex.EncodeToString(s.ParentSpanId)))
	}
	return strings.Join(out, " ")
}

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.GetStringValue()
		}
	}
	return ""
}

func tracedEnv(t *testing.T) (*apptest.Env, *receiver, func()) {
	rec := newReceiver(t)
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
	server := rec.find(t, flush, "GET")
	if server.Kind != tracepb.Span_SPAN_KIND_SERVER || len(server.ParentSpanId) != 0 {
		t.Fatalf("server span kind %v parent %x", server.Kind, server.ParentSpanId)
	}
	if got := attr(server, "http.request_id"); got != "req-trace-1" {
		t.Errorf("http.request_id = %q", got)
	}
	if got, want := rec.children(server), []string{"db UserUpsert"}; !slices.Equal(got, want) {
		t.Errorf("children of the server span = %v, want %v (all: %s)", got, want, rec.names())
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
	put := rec.find(t, flush, "blob put")
	rec.mu.Lock()
	var server *tracepb.Span
	for _, s := range rec.spans {
		if slices.Equal(s.SpanId, put.ParentSpanId) {
			server = s
		}
	}
	rec.mu.Unlock()
	if server == nil || server.Name != "POST" || attr(server, "http.request_id") != "upload-1" {
		t.Fatalf("blob put's parent is not the upload's server span: %s", rec.names())
	}
	kids := rec.children(server)
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
	root := rec.find(t, flush, "m4sh gc snapshots")
	if got := rec.children(root); !slices.Equal(got, []string{"db BEGIN", "db COMMIT", "river.insert_many"}) {
		t.Fatalf("children of the gc span = %v (all: %s)", got, rec.names())
	}
	insert := rec.find(t, flush, "river.insert_many")
	work := rec.find(t, flush, "river.work/"+solo.KindCleanup)
	if len(work.Links) != 1 || !slices.Equal(work.Links[0].SpanId, insert.SpanId) || !slices.Equal(work.Links[0].TraceId, root.TraceId) {
		t.Fatalf("work span links %v, want the insert span %x of trace %x", work.Links, insert.SpanId, root.TraceId)
	}
	if kids := rec.children(work); !slices.ContainsFunc(kids, func(n string) bool { return strings.HasPrefix(n, "db ") }) {
		t.Errorf("the work span has no statement spans: %v", kids)
	}
}
