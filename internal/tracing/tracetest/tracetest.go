// Package tracetest is a loopback OTLP/HTTP trace receiver for tests: an http.Server that
// decodes the protobuf ExportTraceServiceRequest and keeps the spans, with look-ups by name
// and parent to assert a trace's shape.
package tracetest

import (
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
)

// Receiver is a loopback OTLP/HTTP collector keeping every span it is sent.
type Receiver struct {
	URL   string
	mu    sync.Mutex
	spans []*tracepb.Span
}

func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{URL: "http://" + ln.Addr().String() + "/v1/traces"}
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

// Find returns the one span named name, waiting for it to arrive.
func (r *Receiver) Find(t testing.TB, flush func(), name string) *tracepb.Span {
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
			t.Fatalf("%d spans named %q; have %s", len(got), name, r.Names())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Children returns the names of the spans whose parent is p, sorted.
func (r *Receiver) Children(p *tracepb.Span) []string {
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

// Names lists every span as name(id<-parent id), for failure messages.
func (r *Receiver) Names() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.spans {
		out = append(out, fmt.Sprintf("%s(%s<-%s)", s.Name, hex.EncodeToString(s.SpanId)[:6], hex.EncodeToString(s.ParentSpanId)))
	}
	return strings.Join(out, " ")
}

// Parent returns the span whose id is s's parent, nil when none arrived.
func (r *Receiver) Parent(s *tracepb.Span) *tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.spans {
		if slices.Equal(p.SpanId, s.ParentSpanId) && slices.Equal(p.TraceId, s.TraceId) {
			return p
		}
	}
	return nil
}

// Count returns how many spans named name have arrived so far.
func (r *Receiver) Count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.spans {
		if s.Name == name {
			n++
		}
	}
	return n
}

// Child returns the span named name whose parent is p, nil when none arrived.
func (r *Receiver) Child(p *tracepb.Span, name string) *tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.Name == name && slices.Equal(s.ParentSpanId, p.SpanId) && slices.Equal(s.TraceId, p.TraceId) {
			return s
		}
	}
	return nil
}
