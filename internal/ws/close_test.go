package ws_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/auth"
)

// TestCloseCodes has one row per close code and cause (the AsyncAPI document): each connection is
// accepted and then closed with exactly that code and reason.
func TestCloseCodes(t *testing.T) {
	t.Parallel()
	f := setup(t, map[string]string{"AUTH_JWT_LEEWAY": "0s"})
	class, session := f.Class.Id.String(), f.Session.Id.String()
	expired, err := auth.Mint([]byte(apptest.Secret), auth.MintOptions{UserID: "mia", TTL: time.Minute, Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	shortLived, err := auth.Mint([]byte(apptest.Secret), auth.MintOptions{UserID: "tina", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	oversize := `{"type":"cursor","x":1,"y":2}` + strings.Repeat(" ", 2049-29)
	flood := make([]string, 100)
	for i := range flood {
		flood[i] = `{"type":"cursor","x":1,"y":2}`
	}
	tests := []struct {
		name       string
		url        string
		header     http.Header
		protocols  []string
		send       []string
		binary     bool
		removeMia  bool
		wantCode   int
		wantReason string
	}{
		{name: "no token", url: f.sessionURL(), wantCode: 4401, wantReason: "unauthorized"},
		{name: "bad token", url: f.sessionURL(), header: bearer("not-a-jwt"), wantCode: 4401, wantReason: "unauthorized"},
		{name: "bad token in subprotocol", url: f.sessionURL(), protocols: []string{"m4sh.presence.v1", "bearer.not-a-jwt"}, wantCode: 4401, wantReason: "unauthorized"},
		{name: "not a bearer header", url: f.sessionURL(), header: http.Header{"Authorization": {"Basic " + f.Mia}}, wantCode: 4401, wantReason: "unauthorized"},
		{name: "expired token", url: f.sessionURL(), header: bearer(expired), wantCode: 4401, wantReason: "unauthorized"},
		{name: "token only in the query", url: f.sessionURL() + "?token=" + f.Mia + "&access_token=" + f.Mia, wantCode: 4401, wantReason: "unauthorized"},
		{name: "stranger", url: f.sessionURL(), header: bearer(f.Sam), wantCode: 4403, wantReason: "forbidden"},
		{name: "session of another classroom", url: f.wsURL(class, f.OtherSession.Id.String()), header: bearer(f.Tina), wantCode: 4403, wantReason: "forbidden"},
		{name: "missing session", url: f.wsURL(class, uuid.NewString()), header: bearer(f.Tina), wantCode: 4403, wantReason: "forbidden"},
		{name: "missing classroom", url: f.wsURL(uuid.NewString(), session), header: bearer(f.Tina), wantCode: 4403, wantReason: "forbidden"},
		{name: "malformed session id", url: f.wsURL(class, "nope"), header: bearer(f.Tina), wantCode: 4403, wantReason: "forbidden"},
		{name: "removed member", url: f.sessionURL(), header: bearer(f.Mia), removeMia: true, wantCode: 4403, wantReason: "forbidden"},
		{name: "token expires while connected", url: f.sessionURL(), header: bearer(shortLived), wantCode: 4401, wantReason: "token_expired"},
		{name: "oversize frame", url: f.sessionURL(), header: bearer(f.Tina), send: []string{oversize}, wantCode: 4400, wantReason: "bad_request"},
		{name: "binary frame", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"ping"}`}, binary: true, wantCode: 4400, wantReason: "bad_request"},
		{name: "invalid JSON", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"cursor","x":1,`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "two JSON values", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"ping"}{"type":"ping"}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "not an object", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`[1,2]`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "unknown type", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"draw","x":1,"y":2}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "extra field", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"cursor","x":1,"y":2,"z":3}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "missing field", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"cursor","x":1}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "string coordinate", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"cursor","x":"1","y":2}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "NaN", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"cursor","x":NaN,"y":0}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "Infinity", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"cursor","x":Infinity,"y":0}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "huge number", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"cursor","x":1e400,"y":0}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "just over the bound", url: f.sessionURL(), header: bearer(f.Tina), send: []string{`{"type":"cursor","x":1000000000.0000001,"y":0}`}, wantCode: 4400, wantReason: "bad_request"},
		{name: "flood of 100 cursors", url: f.sessionURL(), header: bearer(f.Tina), send: flood, wantCode: 4429, wantReason: "rate_limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, tt.url, &websocket.DialOptions{HTTPHeader: tt.header, Subprotocols: tt.protocols})
			if err != nil {
				t.Fatalf("dial: %v (the upgrade must be accepted)", err)
			}
			defer c.CloseNow()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			if tt.removeMia {
				if f := read(t, c); f.Type != "presence.snapshot" {
					t.Fatalf("first frame %+v, want the snapshot", f)
				}
				start := time.Now()
				r := f.Env.Do(apptest.Request{Method: "DELETE", Path: "/api/v1/classrooms/" + class + "/members/mia/", Token: f.Tina})
				if r.Status != http.StatusNoContent {
					t.Fatalf("DELETE member = %d: %s", r.Status, r.Body)
				}
				code, reason := closeOf(c, 5*time.Second)
				if code != tt.wantCode || reason != tt.wantReason {
					t.Fatalf("close = %d %q, want %d %q", code, reason, tt.wantCode, tt.wantReason)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("closed %v after the removal, want within 1s", d)
				}
				return
			}
			typ := websocket.MessageText
			if tt.binary {
				typ = websocket.MessageBinary
			}
			for _, m := range tt.send {
				if err := c.Write(ctx, typ, []byte(m)); err != nil {
					break // the server may close before the flood is written
				}
			}
			code, reason := closeOf(c, 10*time.Second)
			if code != tt.wantCode || reason != tt.wantReason {
				t.Errorf("close = %d %q, want %d %q", code, reason, tt.wantCode, tt.wantReason)
			}
		})
	}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// TestAcceptedEdges: frames the contract allows are not closed on.
func TestAcceptedEdges(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	c, resp, err := websocket.Dial(context.Background(), f.sessionURL(), &websocket.DialOptions{
		Subprotocols: []string{"m4sh.presence.v1", "bearer." + f.Tina},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "m4sh.presence.v1" {
		t.Errorf("selected subprotocol %q, want m4sh.presence.v1 (and never the token)", got)
	}
	if fr := read(t, c); fr.Type != "presence.snapshot" || len(fr.Users) != 1 || fr.Users[0].UserId != "tina" || fr.SessionID != f.Session.Id.String() {
		t.Fatalf("snapshot = %+v", fr)
	}
	exactly := `{"type":"cursor","x":1,"y":2}` + strings.Repeat(" ", 2048-29)
	for _, m := range []string{
		exactly,
		` { "y" : -0.5e3 , "type" : "cursor" , "x" : 1E2 } `,
		`{"type":"cursor","x":1000000000,"y":-1000000000}`,
		`{"type":"cursor","x":-0,"y":1e-400}`,
	} {
		write(t, c, m)
	}
	expectOnlyPong(t, c, "tina")
}
