package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
)

// loadConns is the load generator's concurrency, as `wrk -c64`.
const loadConns = 64

// load posts body to url from loadConns concurrent keep-alive connections b.N times in all,
// and reports requests/s and the p99 latency beside ns/op, and the events the server said it
// dropped (X-Telemetry-Dropped: its buffer was full), per request, when there were any.
func load(b *testing.B, url string, body []byte, header http.Header) {
	tr := &http.Transport{MaxIdleConnsPerHost: loadConns, MaxConnsPerHost: loadConns, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var lat []time.Duration
	var dropped int
	b.SetParallelism((loadConns + 1) / 2) // × GOMAXPROCS (2 here) goroutines
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		var myDropped int
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header = header.Clone()
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mine = append(mine, time.Since(t0))
			if d := resp.Header.Get("X-Telemetry-Dropped"); d != "" && d != "0" {
				n, _ := strconv.Atoi(d)
				myDropped += n
			}
			if resp.StatusCode != http.StatusNoContent {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		dropped += myDropped
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	if dropped > 0 {
		b.ReportMetric(float64(dropped)/float64(b.N), "dropped-events/op")
	}
}

// benchIngest measures POST /api/v1/logs/telemetry/ through the whole service (throttle,
// gzip, JSON and schema validation, buffering; the writer stores into PostgreSQL meanwhile)
// beside a bare net/http handler that reads the same body and answers 204, both over
// loopback with the same load generator.
func benchIngest(b *testing.B, body []byte, header http.Header) {
	env := apptest.New(b, map[string]string{
		"TELEMETRY_RATE_PER_MIN": "1000000000", // one load generator is one client
		"LOG_LEVEL":              "error",
	})
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(bare.Close)
	b.Run("baseline", func(b *testing.B) { load(b, bare.URL+telemetryURL, body, header) })
	b.Run("m4sh", func(b *testing.B) { load(b, env.Server.URL+telemetryURL, body, header) })
}

func BenchmarkTelemetryIngestSingle(b *testing.B) {
	body := []byte(`{"name":"editor.opened","level":"info","session_id":"s-42","props":{"tool":"pen","ms":12}}`)
	benchIngest(b, body, http.Header{"Content-Type": {"application/json"}})
}

func BenchmarkTelemetryIngestBatch20Gzip(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"events":[`)
	for i := range 20 {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"name":"canvas.stroke","ts":"2026-03-01T12:00:%02d.5Z","level":"debug","session_id":"s-42","props":{"tool":"pen","points":%d,"ms":%d}}`, i, 10+i, 3*i)
	}
	buf.WriteString(`]}`)
	benchIngest(b, gzipped(b, buf.Bytes()), http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}})
}
