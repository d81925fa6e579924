package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

// fixture is the shared classroom fixture (apptest.Classrooms) with WebSocket helpers.
type fixture struct{ apptest.Classrooms }

func setup(t *testing.T, env map[string]string) fixture {
	t.Helper()
	return fixture{apptest.NewClassrooms(t, env)}
}

// wsURL is the WebSocket URL of a classroom session on the test server.
func (f fixture) wsURL(class, session string) string { return nodeURL(f.Env, class, session) }

// nodeURL is the WebSocket URL of a classroom session on one running service.
func nodeURL(e *apptest.Env, class, session string) string {
	return "ws" + strings.TrimPrefix(e.Server.URL, "http") + "/ws/classroom/" + class + "/session/" + session + "/"
}

func (f fixture) sessionURL() string { return f.wsURL(f.Class.Id.String(), f.Session.Id.String()) }

// dial connects with a bearer header (when tok is set) and fails the test on a refused
// handshake.
func dial(t *testing.T, url, tok string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// frame is a decoded server message.
type frame struct {
	Type      string             `json:"type"`
	SessionID string             `json:"session_id"`
	Users     []api.PresenceUser `json:"users"`
	User      *api.PresenceUser  `json:"user"`
	UserID    string             `json:"user_id"`
	X         float64            `json:"x"`
	Y         float64            `json:"y"`
	Cursors   []struct {
		UserID string  `json:"user_id"`
		X      float64 `json:"x"`
		Y      float64 `json:"y"`
	} `json:"cursors"`
}

// read returns the next message, failing the test after a generous deadline.
func read(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("read a %v frame, want text", typ)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame is not JSON: %v: %s", err, b)
	}
	return f
}

func write(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %s: %v", msg, err)
	}
}

// closeOf reads until the connection ends and returns its close code and reason
// (-1 when it ended without a close frame).
func closeOf(c *websocket.Conn, within time.Duration) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return int(ce.Code), ce.Reason
		}
		return -1, err.Error()
	}
}

// expectOnlyPong sends a ping and asserts the next frame is the pong: nothing else was
// queued for c before it.
func expectOnlyPong(t *testing.T, c *websocket.Conn, who string) {
	t.Helper()
	write(t, c, `{"type":"ping"}`)
	if f := read(t, c); f.Type != "pong" {
		t.Fatalf("%s: next frame = %+v, want only the pong", who, f)
	}
}
