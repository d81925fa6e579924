package webhooktest_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/webhooktest"
)

// TestAnswersAsAnHTTPServer: net/http's client gets 204 with a Date over one kept-alive
// connection for requests with bodies; a chunked request gets 501 and the connection
// closed; HTTP/1.0 and `Connection: close` get their answer, then the close. Every mode
// counts each answered request, and Wait returns once they are all in.
func TestAnswersAsAnHTTPServer(t *testing.T) {
	for _, mode := range []string{webhooktest.ModeProcess, webhooktest.ModeInProcess, webhooktest.ModeNetHTTP} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv("M4SH_BENCH_RECEIVER", mode)
			r := webhooktest.Start(t)
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr}
			for i := range 3 {
				resp, err := client.Post(r.URL, "application/json", strings.NewReader(strings.Repeat("x", 5000*i)))
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Date") == "" || resp.Close {
					t.Errorf("request %d: %s, Date %q, close %t", i, resp.Status, resp.Header.Get("Date"), resp.Close)
				}
			}
			addr := strings.TrimSuffix(strings.TrimPrefix(r.URL, "http://"), "/")
			raw := func(req string) string {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, req); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				// The server closes after the answer: a read sees the end.
				if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
					t.Errorf("%q: connection still open after %s", req, resp.Status)
				}
				return resp.Status
			}
			if mode != webhooktest.ModeNetHTTP { // net/http's own server reads chunked bodies
				if got := raw("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"); got != "501 Not Implemented" {
					t.Errorf("chunked: %s", got)
				}
			}
			if got := raw("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}"); !strings.HasPrefix(got, "204") {
				t.Errorf("HTTP/1.0: %s", got)
			}
			if got := raw("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"); !strings.HasPrefix(got, "204") {
				t.Errorf("Connection: close: %s", got)
			}
			if got := r.Wait(5, 5*time.Second); got != 5 {
				t.Errorf("answered %d requests, want 5", got)
			}
			start := time.Now()
			if got := r.Wait(6, 100*time.Millisecond); got != 5 || time.Since(start) < 100*time.Millisecond {
				t.Errorf("Wait(6) = %d after %s, want 5 after the timeout", got, time.Since(start))
			}
			if _, cpu := r.Stats(); (cpu > 0) != (mode == webhooktest.ModeProcess) {
				t.Errorf("receiver CPU %s in mode %s", cpu, mode)
			}
		})
	}
}
