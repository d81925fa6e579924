package httppost_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/httppost"
)

// poster is what both clients under comparison do: one POST, the status, or an error.
type poster func(ctx context.Context, url string, header []httppost.Field, body []byte) (int, error)

var constant = []httppost.Field{{"Content-Type", "application/json"}, {"User-Agent", "m4sh-webhooks"}}

// reference is net/http's Transport as webhook delivery used it: no redirects followed, up
// to 64 KiB of the answer read so that the connection can be reused.
func reference(t *testing.T) poster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func(ctx context.Context, url string, header []httppost.Field, body []byte) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
		if err != nil {
			return 0, err
		}
		for _, f := range append(append([]httppost.Field(nil), constant...), header...) {
			req.Header.Set(f.Name, f.Value)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
}

// lean is the Client under test, one per URL as the webhook deliverer holds it.
func lean(t *testing.T) poster {
	clients := map[string]*httppost.Client{}
	var mu sync.Mutex
	return func(ctx context.Context, url string, header []httppost.Field, body []byte) (int, error) {
		mu.Lock()
		c, ok := clients[url]
		if !ok {
			var err error
			if c, err = httppost.New(url, httppost.Options{Header: constant, MaxIdle: 4}); err != nil {
				mu.Unlock()
				return 0, err
			}
			clients[url] = c
			t.Cleanup(c.CloseIdle)
		}
		mu.Unlock()
		return c.Post(ctx, header, body)
	}
}

func both(t *testing.T) map[string]poster {
	return map[string]poster{"net/http": reference(t), "httppost": lean(t)}
}

// rawServer accepts connections and runs serve on each; it counts them.
type rawServer struct {
	ln    net.Listener
	conns atomic.Int64
}

func newRawServer(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() { // closing the connections ends handlers waiting on kept-alive ones
		_ = ln.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			s.conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	return s
}

func (s *rawServer) url(path string) string { return "http://" + s.ln.Addr().String() + path }

// answering reads requests and writes answer's bytes for each (its argument: the request's
// number on this connection, from 1); close after the answer when answer says so.
func answering(answer func(n int) (raw string, closeAfter bool)) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for n := 1; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			raw, closeAfter := answer(n)
			if _, err := io.WriteString(c, raw); err != nil || closeAfter {
				return
			}
		}
	}
}

// TestSameRequestOnTheWire: a receiver parsing what each client sends sees the same method,
// target, Host, length, header fields and body — but for net/http's Accept-Encoding (it
// asks for gzip to decompress answers; the lean client reads no answer body).
func TestSameRequestOnTheWire(t *testing.T) {
	t.Parallel()
	type seen struct {
		Method, RequestURI, Host, Proto string
		ContentLength                   int64
		Header                          http.Header
		Body                            string
	}
	got := make(chan seen, 1)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		req.Header.Del("Accept-Encoding")
		got <- seen{req.Method, req.RequestURI, req.Host, req.Proto, req.ContentLength, req.Header, string(body)}
		_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	})
	header := []httppost.Field{{"Webhook-Id", "msg_1"}, {"Webhook-Timestamp", "1700000000"}, {"Webhook-Signature", "v1,abc="}}
	body := []byte(`{"type":"ping","data":{"message":"é"}}`)
	for _, path := range []string{"/hooks/in?x=1&y=%20", ""} {
		url := strings.Replace(srv.url(path), "http://", "http://user:p%40ss@", 1)
		var results []seen
		for _, name := range []string{"net/http", "httppost"} {
			status, err := both(t)[name](context.Background(), url, header, body)
			if err != nil || status != http.StatusNoContent {
				t.Fatalf("%s: status %d, err %v", name, status, err)
			}
			results = append(results, <-got)
		}
		if !reflect.DeepEqual(results[0], results[1]) {
			t.Errorf("path %q: net/http sent\n%+v\nhttppost sent\n%+v", path, results[0], results[1])
		}
		if a := results[1].Header.Get("Authorization"); a != "Basic dXNlcjpwQHNz" {
			t.Errorf("Authorization = %q, want basic auth of user:p@ss", a)
		}
	}
}

// TestAnswersAsNetHTTP: for each way a receiver may answer, two requests in a row get the
// same statuses (or failures) from both clients, over the same number of connections
// (kept alive when net/http keeps them).
func TestAnswersAsNetHTTP(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100<<10)
	cases := []struct {
		name       string
		answer     func(n int) (string, bool)
		pause      time.Duration // between the two requests
		wantStatus [2]int        // 0: an error
		wantConns  int64
	}{
		{"204", func(int) (string, bool) { return "HTTP/1.1 204 No Content\r\n\r\n", false }, 0, [2]int{204, 204}, 1},
		{"content-length body", func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false }, 0, [2]int{200, 200}, 1},
		{"chunked", func(int) (string, bool) {
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false
		}, 0, [2]int{200, 200}, 1},
		{"1xx first", func(int) (string, bool) {
			return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", false
		}, 0, [2]int{201, 201}, 1},
		{"connection close", func(int) (string, bool) {
			return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true
		}, 0, [2]int{200, 200}, 2},
		{"http/1.0 body to EOF", func(int) (string, bool) { return "HTTP/1.0 200 OK\r\n\r\nbye", true }, 0, [2]int{200, 200}, 2},
		{"no length, body to EOF", func(int) (string, bool) { return "HTTP/1.1 200 OK\r\n\r\nbye", true }, 0, [2]int{200, 200}, 2},
		{"oversized body", func(int) (string, bool) {
			return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(long), long), false
		}, 0, [2]int{200, 200}, 2},
		{"500 then 410", func(n int) (string, bool) {
			if n == 1 {
				return "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops", false
			}
			return "HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n", false
		}, 0, [2]int{500, 410}, 1},
		{"redirect not followed", func(int) (string, bool) {
			return "HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", false
		}, 0, [2]int{307, 307}, 1},
		{"closed mid-body", func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel", true }, 0, [2]int{200, 200}, 2},
		{"closed mid-header", func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Le", true }, 0, [2]int{0, 0}, 2},
		{"closed without an answer", func(int) (string, bool) { return "", true }, 0, [2]int{0, 0}, 2},
		{"garbage", func(int) (string, bool) { return "SMTP ready\r\n\r\n", true }, 0, [2]int{0, 0}, 2},
		{"idle connection closed by the server", func(int) (string, bool) {
			return "HTTP/1.1 204 No Content\r\n\r\n", true // closes without saying so
		}, 100 * time.Millisecond, [2]int{204, 204}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for name, post := range both(t) {
				srv := newRawServer(t, answering(tc.answer))
				var statuses [2]int
				for i := range statuses {
					if i == 1 {
						time.Sleep(tc.pause)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					status, err := post(ctx, srv.url("/"), nil, []byte("{}"))
					cancel()
					if (err == nil) != (status != 0) {
						t.Fatalf("%s: status %d with err %v", name, status, err)
					}
					statuses[i] = status
				}
				time.Sleep(10 * time.Millisecond) // the second connection's accept
				if statuses != tc.wantStatus || srv.conns.Load() != tc.wantConns {
					t.Errorf("%s: statuses %v over %d connections, want %v over %d", name, statuses, srv.conns.Load(), tc.wantStatus, tc.wantConns)
				}
			}
		})
	}
}

// TestHungReceiverTimesOut: a receiver that reads the request and never answers costs the
// attempt's deadline, then an error; cancelling the context ends the wait at once.
func TestHungReceiverTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := newRawServer(t, func(net.Conn, *bufio.Reader) { <-release })
	t.Cleanup(func() { close(release) }) // before the server's cleanup, which waits for it
	for name, post := range both(t) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := post(ctx, srv.url("/"), nil, []byte("{}"))
		cancel()
		if took := time.Since(start); err == nil || took < 200*time.Millisecond || took > 2*time.Second {
			t.Errorf("%s: err %v after %s, want a timeout after 200 ms", name, err, took)
		}
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start = time.Now()
		_, err = post(ctx, srv.url("/"), nil, []byte("{}"))
		if took := time.Since(start); err == nil || took > 2*time.Second {
			t.Errorf("%s: cancelled: err %v after %s", name, err, took)
		}
	}
}

// TestRefusesBrokenHeaderValues: a value with a line break would split the request; both
// refuse it before sending anything.
func TestRefusesBrokenHeaderValues(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, answering(func(int) (string, bool) { return "HTTP/1.1 204 No Content\r\n\r\n", false }))
	for name, post := range both(t) {
		_, err := post(context.Background(), srv.url("/"), []httppost.Field{{"Webhook-Id", "msg_1\r\nX-Injected: 1"}}, []byte("{}"))
		if err == nil {
			t.Errorf("%s: a header value with CRLF was sent", name)
		}
	}
	if n := srv.conns.Load(); n != 0 {
		t.Errorf("%d connections opened, want none", n)
	}
}

// TestHTTPS: an https URL is served over TLS, HTTP/1.1, with the server's certificate checked.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	var proto atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(fmt.Sprint(r.Proto, " tls=", r.TLS != nil, " ", r.Header.Get("Webhook-Id")))
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	c, err := httppost.New(srv.URL+"/in", httppost.Options{Header: constant, TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	for range 2 {
		status, err := c.Post(context.Background(), []httppost.Field{{"Webhook-Id", "msg_tls"}}, []byte("{}"))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("status %d, err %v", status, err)
		}
	}
	if got := proto.Load(); got != "HTTP/1.1 tls=true msg_tls" {
		t.Errorf("server saw %v", got)
	}
	// Without the test CA the certificate is refused.
	strict, err := httppost.New(srv.URL+"/in", httppost.Options{Header: constant})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Post(context.Background(), nil, []byte("{}")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: err %v", err)
	}
}

// TestEndlessHeaderIsBounded: a server that answers with header lines and never ends them
// costs at most maxHeaderBytes of reading: the exchange fails once they are read, long
// before its deadline, and the connection is not kept.
func TestEndlessHeaderIsBounded(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\n"))
		for range 5000 { // 5 MB of header lines, then it waits
			if _, err := c.Write(line); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, c) // until the client hangs up
	})
	c, err := httppost.New(srv.url("/hook"), httppost.Options{Header: constant})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	status, err := c.Post(ctx, nil, []byte(`{}`))
	if err == nil || ctx.Err() != nil {
		t.Fatalf("status %d, err %v after %v: want a failure before the deadline", status, err, time.Since(start))
	}
	c.CloseIdle()
}

// TestNoAnswerFromAnIdleConnection: bytes a receiver sends on a connection while it is idle
// are nobody's answer. A receiver that times idle connections out with a 408 and closes
// them, and one that answers every request twice (200, then 500 a moment later): each
// request gets its own answer, 200, from both clients, and none gets the 408 or the 500.
func TestNoAnswerFromAnIdleConnection(t *testing.T) {
	t.Parallel()
	afterAnswer := map[string]func(c net.Conn){
		"408 then close": func(c net.Conn) {
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			_ = c.(*net.TCPConn).CloseWrite()
		},
		"a second answer": func(c net.Conn) {
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
		},
	}
	for name, after := range afterAnswer {
		srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
					return
				}
				after(c)
			}
		})
		for client, post := range both(t) {
			for i := range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				status, err := post(ctx, srv.url("/hook"), nil, []byte(`{}`))
				cancel()
				if status != http.StatusOK || err != nil {
					t.Errorf("%s, %s, request %d: %d %v, want 200", name, client, i+1, status, err)
				}
				time.Sleep(60 * time.Millisecond) // the stray bytes arrive while idle
			}
		}
	}
}

// TestIdleConnectionsExpire: connections idle for longer than IdleTimeout are closed when
// the client next looks for one, the oldest too, not only the one it would reuse.
func TestIdleConnectionsExpire(t *testing.T) {
	t.Parallel()
	var closed atomic.Int64
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		answering(func(int) (string, bool) { return "HTTP/1.1 204 No Content\r\n\r\n", false })(c, br)
		closed.Add(1)
	})
	c, err := httppost.New(srv.url("/hook"), httppost.Options{Header: constant, MaxIdle: 4, IdleTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdle()
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 3 { // three connections at once, then idle
		wg.Go(func() {
			if status, err := c.Post(ctx, nil, []byte(`{}`)); status != http.StatusNoContent || err != nil {
				t.Errorf("%d %v", status, err)
			}
		})
	}
	wg.Wait()
	time.Sleep(150 * time.Millisecond)
	if status, err := c.Post(ctx, nil, []byte(`{}`)); status != http.StatusNoContent || err != nil {
		t.Fatalf("%d %v", status, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for closed.Load() < srv.conns.Load()-1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := closed.Load(), srv.conns.Load()-1; got != want {
		t.Errorf("%d of %d connections closed, want all but the one in use", got, srv.conns.Load())
	}
}
