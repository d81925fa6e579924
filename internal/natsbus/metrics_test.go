package natsbus

import (
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestConnectedMetric: m4sh_nats_connected follows the connection down and back up, and the
// reconnect is counted.
func TestConnectedMetric(t *testing.T) {
	t.Parallel()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	b, err := Connect(Options{URL: srv.ClientURL(), Node: uuid.New(), ReconnectWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cs := b.Collectors()
	read := func(i int) float64 {
		ch := make(chan prometheus.Metric, 1)
		cs[i].Collect(ch)
		var m dto.Metric
		if err := (<-ch).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	waitFor := func(what string, i int, want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for read(i) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v after 10s, want %v", what, read(i), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("m4sh_nats_connected while up", 0, 1)
	if got := read(1); got != 0 {
		t.Errorf("m4sh_nats_reconnects_total = %v before any loss, want 0", got)
	}
	opts.Port = srv.Addr().(*net.TCPAddr).Port // the restarted server listens where it did
	srv.Shutdown()
	waitFor("m4sh_nats_connected while the server is down", 0, 0)
	srv2, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv2.Start()
	t.Cleanup(srv2.Shutdown)
	waitFor("m4sh_nats_connected after the server is back", 0, 1)
	waitFor("m4sh_nats_reconnects_total", 1, 1)
}
