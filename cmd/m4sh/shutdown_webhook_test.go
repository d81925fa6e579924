package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/dbtest"
)

// TestServeStopsJobsGracefully: on shutdown, serve lets a running job finish within half its
// budget (a webhook the receiver answers in 500 ms is delivered, not cut off), then cancels
// what is still running, so that a delivery stuck on a receiver that never answers does not
// outlive the process as a "running" job (River would rescue and send it again only an hour
// later): River makes it available again at once, the interrupted attempt not counted, so
// the next start sends it first.
func TestServeStopsJobsGracefully(t *testing.T) {
	t.Parallel()
	t.Run("slow receiver", func(t *testing.T) {
		t.Parallel()
		shutdownWithAReceiver(t, 500*time.Millisecond, "completed", 1)
	})
	t.Run("hung receiver", func(t *testing.T) {
		t.Parallel()
		shutdownWithAReceiver(t, time.Hour, "available", 0)
	})
}

// shutdownWithAReceiver signals serve while a session.started delivery is in flight to a
// receiver that answers 204 after delay, and checks the delivery job's state and attempt
// count afterwards.
func shutdownWithAReceiver(t *testing.T, delay time.Duration, wantState string, wantAttempt int) {
	hung := make(chan struct{}, 16)
	release := make(chan struct{})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung <- struct{}{}
		select {
		case <-time.After(delay):
			w.WriteHeader(http.StatusNoContent)
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer recv.Close()
	defer close(release)
	dbURL := dbtest.NewURL(t)
	env := map[string]string{
		"DATABASE_URL":     dbURL,
		"AUTH_JWT_SECRET":  testSecret,
		"HTTP_ADDR":        "127.0.0.1:0",
		"LOG_LEVEL":        "error",
		"WEBHOOK_URL":      recv.URL,
		"WEBHOOK_SECRET":   webhookSecret,
		"WEBHOOK_EVENTS":   "session.started",
		"WEBHOOK_TIMEOUT":  "5m",
		"SHUTDOWN_TIMEOUT": "2s",
	}
	srv := serveInProcess(t, env)
	addr := srv.addr

	tina := (&cluster{t: t, env: env}).token("tina")
	var class struct {
		ID string `json:"id"`
	}
	api(t, http.MethodPost, addr+"/api/v1/classrooms/", tina, `{"title":"Shutdown"}`, 201, &class)
	api(t, http.MethodPost, addr+"/api/v1/classrooms/"+class.ID+"/sessions/", tina, `{}`, 201, nil)
	select {
	case <-hung:
	case <-time.After(15 * time.Second):
		t.Fatal("session.started not sent to the receiver within 15s")
	}

	srv.signal()
	stopped := time.Now()
	srv.stopped(t) // nil: running jobs done or cancelled within the budget
	if took := time.Since(stopped); took > 4*time.Second {
		t.Errorf("shutdown took %v with SHUTDOWN_TIMEOUT 2s", took)
	}
	var state string
	var attempt int
	if err := dbtest.Pool(t, dbURL).QueryRow(context.Background(),
		`SELECT state::text, attempt FROM river_job WHERE kind LIKE 'webhook.%'`).Scan(&state, &attempt); err != nil {
		t.Fatal(err)
	}
	if state != wantState || attempt != wantAttempt {
		t.Errorf("the delivery's job after shutdown: state %s, attempt %d; want %s, attempt %d", state, attempt, wantState, wantAttempt)
	}
}
