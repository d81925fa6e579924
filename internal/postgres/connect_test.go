package postgres_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/postgres"
)

// silentServer accepts connections and reads whatever comes, never answering: a wedged
// server or proxy, as seen from a client.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	return ln.Addr().String()
}

func TestConnectGivesUpOnSilentServer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		query    string
		min, max time.Duration
	}{
		{"default", "sslmode=disable", postgres.DefaultConnectTimeout, postgres.DefaultConnectTimeout + 3*time.Second},
		{"from the URL", "sslmode=disable&connect_timeout=1", time.Second, 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			pool, err := postgres.Connect(context.Background(), "postgres://m4sh@"+silentServer(t)+"/m4sh?"+c.query, 2)
			took := time.Since(start)
			if err == nil {
				pool.Close()
				t.Fatal("connected to a server that never answers")
			}
			if took < c.min || took > c.max {
				t.Errorf("gave up after %v, want %v..%v (%v)", took, c.min, c.max, err)
			}
		})
	}
}
