package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/dbtest"
)

// TestAloneKilled: a node alone (no PUBSUB) killed with kill -9 leaves its users'
// attendance spans open; the next node to start ends them, before it serves, at the killed
// node's last heartbeat.
func TestAloneKilled(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts several processes")
	}
	dbURL := dbtest.NewURL(t)
	pool := dbtest.Pool(t, dbURL)
	ctx := context.Background()
	cl := &cluster{t: t, env: map[string]string{
		"DATABASE_URL":               dbURL,
		"AUTH_JWT_SECRET":            testSecret,
		"HTTP_ADDR":                  "127.0.0.1:0",
		"LOG_LEVEL":                  "warn",
		"CLUSTER_HEARTBEAT_INTERVAL": "200ms",
		"CLUSTER_PURGE_AFTER":        "600ms",
		"WS_LEAVE_GRACE":             "500ms",
	}}
	a := startNode(t, "alone-a", cl.env)
	tina := cl.token("tina")
	var class, session struct {
		ID string `json:"id"`
	}
	api(t, http.MethodPost, a.addr+"/api/v1/classrooms/", tina, `{"title":"Alone"}`, 201, &class)
	api(t, http.MethodPost, a.addr+"/api/v1/classrooms/"+class.ID+"/sessions/", tina, `{}`, 201, &session)
	tinaA := connect(t, "tina@a", a.ws(class.ID, session.ID), tina)
	tinaA.expect("snapshot tina")
	spans := func() (open, total int) {
		t.Helper()
		if err := pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE left_at IS NULL), count(*) FROM attendance_spans").Scan(&open, &total); err != nil {
			t.Fatal(err)
		}
		return open, total
	}
	deadline := time.Now().Add(10 * time.Second)
	for open, _ := spans(); open != 1; open, _ = spans() {
		if time.Now().After(deadline) {
			t.Fatal("tina's span not opened within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a heartbeat after the span opened
	a.kill()
	killed := time.Now()
	var lastBeat time.Time
	if err := pool.QueryRow(ctx, "SELECT max(seen_at) FROM presence_nodes").Scan(&lastBeat); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // past the purge age (WS_LEAVE_GRACE raises it to 500ms; 600ms)
	if open, _ := spans(); open != 1 {
		t.Fatalf("%d open spans after a's death with no node running, want tina's", open)
	}

	b := startNode(t, "alone-b", cl.env) // listening: its first sweep is done
	var joinedAt, leftAt time.Time
	if err := pool.QueryRow(ctx, "SELECT joined_at, left_at FROM attendance_spans WHERE left_at IS NOT NULL").Scan(&joinedAt, &leftAt); err != nil {
		t.Fatalf("tina's span not ended by b's start: %v", err)
	}
	// At the last heartbeat, or at the span's start if a loaded machine beat no more after it.
	if !leftAt.Equal(lastBeat) && !(leftAt.Equal(joinedAt) && !joinedAt.Before(lastBeat)) || leftAt.After(killed) || killed.Sub(leftAt) > time.Second {
		t.Fatalf("tina's span ended at %v, want a's last heartbeat %v (killed at %v)", leftAt, lastBeat, killed)
	}
	tinaB := connect(t, "tina@b", b.ws(class.ID, session.ID), tina)
	tinaB.expect("snapshot tina")
	deadline = time.Now().Add(10 * time.Second)
	for open, total := spans(); open != 1 || total != 2; open, total = spans() {
		if time.Now().After(deadline) {
			t.Fatalf("spans after tina's return on b: %d open of %d, want 1 of 2", open, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
