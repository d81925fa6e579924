package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/m4sh/backend/internal/dbtest"
)

// TestServeFlushesTelemetryOnShutdown: events accepted before SIGTERM are all stored when
// serve returns, although no flush was due (zero loss on graceful shutdown).
func TestServeFlushesTelemetryOnShutdown(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL":             dbtest.NewURL(t),
		"AUTH_JWT_SECRET":          testSecret,
		"HTTP_ADDR":                "127.0.0.1:0",
		"LOG_LEVEL":                "warn",
		"TELEMETRY_FLUSH_INTERVAL": "1h",
		"TELEMETRY_FLUSH_EVENTS":   "100000",
	}
	srv := serveInProcess(t, vars)
	addr := srv.addr

	const requests, perRequest = 30, 20
	for i := range requests {
		var body bytes.Buffer
		body.WriteString(`{"events":[`)
		for j := range perRequest {
			if j > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"name":"shutdown.%d.%d"}`, i, j)
		}
		body.WriteString(`]}`)
		resp, err := http.Post(addr+"/api/v1/logs/telemetry/", "application/json", &body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("request %d = %d, want 204", i, resp.StatusCode)
		}
	}
	conn, err := pgx.Connect(context.Background(), vars["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	count := func() int {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM telemetry_events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("%d events stored before shutdown, want 0 (no flush due yet)", n)
	}

	srv.signal()
	srv.stopped(t)
	if n := count(); n != requests*perRequest {
		t.Errorf("%d events stored after graceful shutdown, want %d", n, requests*perRequest)
	}
}
