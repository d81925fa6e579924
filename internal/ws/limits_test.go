package ws_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/ws"
)

// Connection caps and session end (README: Hostile input and load), on one node and across two.

// twoNodes starts the classroom fixture on node a and a second service, node b, on the same
// database, both with PUBSUB=nats through an in-process NATS server.
func twoNodes(t *testing.T, env map[string]string) (fixture, *apptest.Env) {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready within 10s")
	}
	t.Cleanup(srv.Shutdown) // after both services (cleanups run last first)
	vars := map[string]string{"PUBSUB": "nats", "NATS_URL": srv.ClientURL()}
	maps.Copy(vars, env)
	f := setup(t, vars)
	vars["DATABASE_URL"] = f.Env.Config.DatabaseURL
	return f, apptest.New(t, vars)
}

// closedAtOnce asserts the connection is closed with code and reason before any message.
func closedAtOnce(t *testing.T, c *websocket.Conn, code int, reason, who string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err == nil {
		t.Fatalf("%s: got %s, want a close %d %s before any message", who, b, code, reason)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || int(ce.Code) != code || ce.Reason != reason {
		t.Fatalf("%s: read ended with %v, want close %d %s", who, err, code, reason)
	}
}

// snapshotOf dials, reads the snapshot and returns the connection.
func snapshotOf(t *testing.T, url, tok string) *websocket.Conn {
	t.Helper()
	c := dial(t, url, tok)
	if s := read(t, c); s.Type != "presence.snapshot" {
		t.Fatalf("first frame %+v, want the snapshot", s)
	}
	return c
}

// TestCapsOneNode: the connection over a cap is accepted and closed at once with 4409, its
// reason naming the cap; the others hear nothing of it, however often it is retried.
func TestCapsOneNode(t *testing.T) {
	t.Parallel()
	f := setup(t, map[string]string{"WS_MAX_CONNS_PER_USER": "2", "WS_MAX_CONNS_PER_SESSION": "3"})
	url := f.sessionURL()
	mia := snapshotOf(t, url, f.Mia)
	snapshotOf(t, url, f.Tina)
	read(t, mia) // tina's join
	snapshotOf(t, url, f.Tina)
	for range 5 { // a client retrying in a loop: no join, no leave for anyone
		closedAtOnce(t, dial(t, url, f.Tina), ws.CodeTooMany, ws.ReasonTooManyConnections, "tina's third tab")
	}
	expectOnlyPong(t, mia, "mia after tina's refused tabs")
	// The session holds 3; a fourth, even a first for its user, is over the session cap.
	r := f.Env.Do(apptest.Request{Method: "POST", Path: "/api/v1/classrooms/" + f.Class.Id.String() + "/members/", Token: f.Tina, Body: map[string]any{"user_id": "sam"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("adding sam = %d: %s", r.Status, r.Body)
	}
	closedAtOnce(t, dial(t, url, f.Sam), ws.CodeTooMany, ws.ReasonSessionFull, "sam, fourth in the session")
	expectOnlyPong(t, mia, "mia after sam's refused connection")
	if st, us := f.presence(t, f.Tina); st != http.StatusOK || userIDs(us) != "[mia/student tina/tutor]" {
		t.Fatalf("presence = %d %s, want mia and tina only", st, userIDs(us))
	}
	// A place freed is a place taken, once the server has read the close (the client's Close
	// can return on coder/websocket's own close reply, before the leave).
	_ = mia.Close(websocket.StatusNormalClosure, "")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, us := f.presence(t, f.Tina)
		if st == http.StatusOK && userIDs(us) == "[tina/tutor]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence 10s after mia closed = %d %s, want tina only", st, userIDs(us))
		}
	}
	snapshotOf(t, url, f.Sam)
}

// TestCapsAcrossNodes: connections on both nodes count towards the caps.
func TestCapsAcrossNodes(t *testing.T) {
	t.Parallel()
	f, b := twoNodes(t, map[string]string{"WS_MAX_CONNS_PER_USER": "2", "WS_MAX_CONNS_PER_SESSION": "3"})
	class, session := f.Class.Id.String(), f.Session.Id.String()
	onA, onB := nodeURL(f.Env, class, session), nodeURL(b, class, session)
	mia := snapshotOf(t, onB, f.Mia)
	snapshotOf(t, onA, f.Tina)
	read(t, mia) // tina's join, across nodes
	snapshotOf(t, onB, f.Tina)
	for _, url := range []string{onA, onB} {
		closedAtOnce(t, dial(t, url, f.Tina), ws.CodeTooMany, ws.ReasonTooManyConnections, "tina's third tab")
	}
	closedAtOnce(t, dial(t, onA, f.Mia), ws.CodeTooMany, ws.ReasonSessionFull, "mia's second tab, fourth in the session")
	expectOnlyPong(t, mia, "mia after the refused connections")
}

// TestSessionEndClosesSocketsOnEveryNode: ending a session closes its connections on both
// nodes with 4403 session_ended within 2 s, and connections made afterwards, to either node,
// are refused the same way. Another session's connections stay.
func TestSessionEndClosesSocketsOnEveryNode(t *testing.T) {
	t.Parallel()
	f, b := twoNodes(t, nil)
	class, session := f.Class.Id.String(), f.Session.Id.String()
	onA, onB := nodeURL(f.Env, class, session), nodeURL(b, class, session)
	tina := snapshotOf(t, onA, f.Tina)
	mia := snapshotOf(t, onB, f.Mia)
	read(t, tina) // mia's join
	oscar := snapshotOf(t, nodeURL(b, f.Other.Id.String(), f.OtherSession.Id.String()), f.Oscar)

	start := time.Now()
	r := f.Env.Do(apptest.Request{Method: "PATCH", Path: "/api/v1/classrooms/" + class + "/sessions/" + session + "/", Token: f.Tina, Body: map[string]any{"status": "ended"}})
	if r.Status != http.StatusOK {
		t.Fatalf("PATCH session = %d: %s", r.Status, r.Body)
	}
	type closed struct {
		who    string
		code   int
		reason string
		after  time.Duration
	}
	done := make(chan closed, 2)
	for who, c := range map[string]*websocket.Conn{"tina on a": tina, "mia on b": mia} {
		go func() {
			code, reason := closeOf(c, 5*time.Second)
			done <- closed{who, code, reason, time.Since(start)}
		}()
	}
	for range 2 {
		c := <-done
		if c.code != ws.CodeForbidden || c.reason != ws.ReasonSessionEnded || c.after > 2*time.Second {
			t.Errorf("%s: close %d %q after %v, want 4403 session_ended within 2s", c.who, c.code, c.reason, c.after)
		}
	}
	for name, url := range map[string]string{"a": onA, "b": onB} {
		closedAtOnce(t, dial(t, url, f.Mia), ws.CodeForbidden, ws.ReasonSessionEnded, "a new connection to node "+name)
	}
	expectOnlyPong(t, oscar, "oscar in another session")
}
