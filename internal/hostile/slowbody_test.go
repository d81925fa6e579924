package hostile_test

import (
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

// jsonRoutes are the operations with a JSON body, as (method, path) for fixture f.
func jsonRoutes(f apptest.Classrooms, solo api.SoloSession) [][2]string {
	c := "/api/v1/classrooms/" + f.Class.Id.String()
	return [][2]string{
		{http.MethodPost, "/api/v1/classrooms/"},
		{http.MethodPost, c + "/members/"},
		{http.MethodPost, c + "/sessions/"},
		{http.MethodPatch, c + "/sessions/" + f.Session.Id.String() + "/"},
		{http.MethodPost, "/api/v1/solo/sessions/"},
	}
}

// heapBytes is the live heap and goroutine stacks after a collection.
func heapBytes() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// drip writes one body byte to every connection each 100 ms until the returned stop is
// called; stop returns once the writer has ended.
func drip(cs []*rawConn) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				for _, c := range cs {
					_ = c.write("x")
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// TestSlowBodies drips 120 bodies that declare 60,000 bytes, one byte every 100 ms, over
// every JSON route with a valid token: memory grows with what arrived (not with what was
// declared), and each request is answered 408 request_timeout once HTTP_BODY_TIMEOUT (2 s
// here) has passed since it started, and its connection closed.
func TestSlowBodies(t *testing.T) {
	// Not parallel: it measures the process's heap, which tests running beside it would move.
	f := apptest.NewClassrooms(t, map[string]string{"HTTP_BODY_TIMEOUT": "2s", "API_WRITE_RATE_PER_MIN": "100000"})
	solo := apptest.MustCreate[api.SoloSession](t, f.Env, f.Tina, "/api/v1/solo/sessions/", map[string]any{"title": "s"})
	routes := jsonRoutes(f, solo)
	const conns = 120
	const declared = 60_000
	before := heapBytes()
	cs := make([]*rawConn, conns)
	start := time.Now()
	for i := range cs {
		rt := routes[i%len(routes)]
		cs[i] = dial(t, f.Env)
		cs[i].head(rt[0], rt[1], f.Tina, declared, "Content-Type: application/json")
		cs[i].write(`{"title":"`)
	}
	stopDrip := drip(cs)
	time.Sleep(1200 * time.Millisecond)
	during := heapBytes()
	growth := int64(during) - int64(before)
	t.Logf("%d slow bodies declaring %d bytes: heap+stacks grew %d KiB (%d bytes per connection, client side included)",
		conns, declared, growth>>10, growth/conns)
	// A buffer sized from Content-Length alone would be 60,000 bytes a connection.
	if growth > conns*40<<10 {
		t.Errorf("memory grew %d bytes for %d slow bodies (%d per connection), want under 40 KiB each", growth, conns, growth/conns)
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			resp, body, err := c.response(6 * time.Second)
			if err != nil {
				t.Errorf("conn %d: no answer: %v", i, err)
				return
			}
			if resp.StatusCode != http.StatusRequestTimeout || code(body) != "request_timeout" {
				t.Errorf("conn %d: %d %s, want 408 request_timeout", i, resp.StatusCode, body)
			}
			if !resp.Close {
				t.Errorf("conn %d: 408 without Connection: close", i)
			}
			if !c.closedByServer(2 * time.Second) {
				t.Errorf("conn %d: connection still open after the 408", i)
			}
		})
	}
	wg.Wait()
	stopDrip()
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("answering every slow body took %v, want about 2 s", d)
	}
}

// TestSlowBodyFinishingInTimeIsServed: a body that arrives in pieces but before the
// deadline is an ordinary request, and the connection stays usable.
func TestSlowBodyFinishingInTimeIsServed(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, map[string]string{"HTTP_BODY_TIMEOUT": "2s"})
	tok := env.Token("alice")
	c := dial(t, env)
	body := `{"title":"Slow but steady"}`
	c.head(http.MethodPost, "/api/v1/classrooms/", tok, len(body), "Content-Type: application/json")
	for i := range body {
		c.write(body[i : i+1])
		time.Sleep(20 * time.Millisecond)
	}
	resp, b, err := c.response(5 * time.Second)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow but timely body = %v %s %v, want 201", resp, b, err)
	}
	if resp.Close {
		t.Error("a fully read request closed the connection")
	}
	// The deadline was lifted when the body ended: a second request on the same connection,
	// sent after the first one's deadline would have passed, is served.
	time.Sleep(2500 * time.Millisecond)
	c.head(http.MethodGet, "/api/v1/classrooms/", tok, -1)
	resp, b, err = c.response(5 * time.Second)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("second request on the connection = %v %s %v, want 200", resp, b, err)
	}
}

// TestRefusedBeforeTheBody: anonymous, badly authenticated, oversized and throttled requests
// are answered before any of their body is read — at once, with Connection: close, and the
// connection closed — although the client sends only a few bytes of a large body.
func TestRefusedBeforeTheBody(t *testing.T) {
	t.Parallel()
	f := apptest.NewClassrooms(t, map[string]string{"HTTP_BODY_TIMEOUT": "30s"})
	solo := apptest.MustCreate[api.SoloSession](t, f.Env, f.Tina, "/api/v1/solo/sessions/", map[string]any{"title": "s"})
	routes := append(jsonRoutes(f, solo), [2]string{http.MethodPost, "/api/v1/solo/sessions/" + solo.Id.String() + "/snapshot/"})
	type attempt struct {
		name     string
		tok      string
		declared int
		status   int
		code     string
	}
	attempts := []attempt{
		{"anonymous", "", 60_000, 401, "unauthorized"},
		{"invalid token", "not-a-jwt", 60_000, 401, "unauthorized"},
		{"invalid token, oversized", "not-a-jwt", 70_000, 401, "unauthorized"},
	}
	var wg sync.WaitGroup
	for _, a := range attempts {
		for _, rt := range routes {
			for k := range 40 / len(routes) {
				wg.Go(func() {
					c := dial(t, f.Env)
					began := time.Now()
					c.head(rt[0], rt[1], a.tok, a.declared, "Content-Type: application/json")
					c.write(`{"title":`)
					resp, body, err := c.response(3 * time.Second)
					what := fmt.Sprintf("%s %s %s #%d", a.name, rt[0], rt[1], k)
					if err != nil {
						t.Errorf("%s: no answer while the body is pending: %v", what, err)
						return
					}
					if resp.StatusCode != a.status || code(body) != a.code {
						t.Errorf("%s = %d %s, want %d %s", what, resp.StatusCode, body, a.status, a.code)
					}
					if d := time.Since(began); d > 2*time.Second {
						t.Errorf("%s answered after %v", what, d)
					}
					if !resp.Close || !c.closedByServer(2*time.Second) {
						t.Errorf("%s: connection not closed (Connection: close %v)", what, resp.Close)
					}
				})
			}
		}
	}
	wg.Wait()
	// A valid token with a JSON body declared over 64 KiB: 413, before the body.
	for _, rt := range jsonRoutes(f, solo) {
		c := dial(t, f.Env)
		c.head(rt[0], rt[1], f.Tina, 70_000, "Content-Type: application/json")
		resp, body, err := c.response(3 * time.Second)
		if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || code(body) != "payload_too_large" || !resp.Close {
			t.Errorf("%s %s with 70,000 bytes declared = %v %s %v, want 413 payload_too_large, closed", rt[0], rt[1], resp, body, err)
		}
	}
}

// TestSlowSnapshotUploads is one user opening 100 snapshot uploads that each declare
// 5 MiB and drip a byte every 100 ms: SOLO_UPLOADS_IN_FLIGHT (4) of them are read, as
// bytes arrive, until HTTP_BODY_TIMEOUT answers 408; the other 96 get 429 too_many_uploads
// at once, before their bodies, with the connection closed. Memory grows with what
// arrived, never with what was declared (a 5 MiB buffer each would be 500 MiB).
func TestSlowSnapshotUploads(t *testing.T) {
	// Not parallel: it measures the process's heap, which tests running beside it would move.
	f := apptest.NewClassrooms(t, map[string]string{"HTTP_BODY_TIMEOUT": "2s", "API_WRITE_RATE_PER_MIN": "100000"})
	solo := apptest.MustCreate[api.SoloSession](t, f.Env, f.Tina, "/api/v1/solo/sessions/", map[string]any{"title": "s"})
	path := "/api/v1/solo/sessions/" + solo.Id.String() + "/snapshot/"
	const conns, declared, inFlight = 100, 5 << 20, 4
	before := heapBytes()
	cs := make([]*rawConn, conns)
	for i := range cs {
		cs[i] = dial(t, f.Env)
		cs[i].head(http.MethodPost, path, f.Tina, declared, "Content-Type: application/octet-stream")
		cs[i].write("x")
	}
	stopDrip := drip(cs)
	time.Sleep(1200 * time.Millisecond)
	growth := int64(heapBytes()) - int64(before)
	t.Logf("%d slow uploads declaring %d bytes: heap+stacks grew %d KiB", conns, declared, growth>>10)
	if growth > conns*40<<10 {
		t.Errorf("memory grew %d bytes for %d slow uploads, want under 40 KiB each", growth, conns)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			resp, body, err := c.response(6 * time.Second)
			if err != nil {
				t.Errorf("upload %d: no answer: %v", i, err)
				return
			}
			if !resp.Close || !c.closedByServer(2*time.Second) {
				t.Errorf("upload %d: %d answered with the connection left open", i, resp.StatusCode)
			}
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				t.Errorf("upload %d: 429 without Retry-After", i)
			}
			mu.Lock()
			got[fmt.Sprintf("%d %s", resp.StatusCode, code(body))]++
			mu.Unlock()
		})
	}
	wg.Wait()
	stopDrip()
	want := map[string]int{"408 request_timeout": inFlight, "429 too_many_uploads": conns - inFlight}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answers = %v, want %v", got, want)
	}
}
