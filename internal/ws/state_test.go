package ws_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/m4sh/backend/internal/apptest"
)

// readRaw returns the next message's bytes.
func readRaw(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// TestPresenceStateAndSnapshotCursors: states are relayed to others (never echoed), the
// snapshot carries every user's latest cursor and state, and leave clears them.
func TestPresenceStateAndSnapshotCursors(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	sess := f.Session.Id.String()
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	mia := dial(t, f.sessionURL(), f.Mia)
	readRaw(t, mia)
	if j := readRaw(t, tina); j != `{"type":"presence.join","user":{"user_id":"mia","name":"Mia","role":"student"}}` {
		t.Fatalf("tina: %s", j)
	}
	write(t, mia, `{"type":"cursor","x":412,"y":96.5}`)
	write(t, mia, `{ "type": "state", "state": {"tool": "pen", "color": "#e8590c"} }`)
	if c := readRaw(t, tina); c != `{"type":"cursor","user_id":"mia","x":412,"y":96.5}` {
		t.Fatalf("tina: %s", c)
	}
	if s := readRaw(t, tina); s != `{"type":"state","user_id":"mia","state":{"color":"#e8590c","tool":"pen"}}` {
		t.Fatalf("tina: %s", s)
	}
	expectOnlyPong(t, mia, "mia after her own state") // never echoed
	write(t, tina, `{"type":"state","state":{}}`)
	if s := readRaw(t, mia); s != `{"type":"state","user_id":"tina","state":{}}` {
		t.Fatalf("mia: %s", s)
	}
	// A second tab of tina: the snapshot draws mia's cursor and both states at once.
	tina2 := dial(t, f.sessionURL(), f.Tina)
	want := `{"type":"presence.snapshot","session_id":"` + sess + `","users":[` +
		`{"user_id":"mia","name":"Mia","role":"student","cursor":{"x":412,"y":96.5},"state":{"color":"#e8590c","tool":"pen"}},` +
		`{"user_id":"tina","name":"Tina","role":"tutor","state":{}}]}`
	if s := readRaw(t, tina2); s != want {
		t.Fatalf("snapshot:\n got %s\nwant %s", s, want)
	}

	// Over 512 bytes serialized: an error frame, the connection stays, nobody hears of it.
	big := `{"type":"state","state":{"s":"` + strings.Repeat("x", 505) + `"}}` // 513 bytes serialized
	write(t, mia, big)
	if e := readRaw(t, mia); e != `{"type":"error","code":"state_too_large","message":"presence state is larger than 512 bytes","for":"state"}` {
		t.Fatalf("mia: %s", e)
	}
	expectOnlyPong(t, mia, "mia after the refused state")
	write(t, mia, `{"type":"state","state":{"s":"`+strings.Repeat("x", 504)+`"}}`) // 512: accepted
	for _, c := range []*websocket.Conn{tina, tina2} {
		if s := readRaw(t, c); !strings.HasPrefix(s, `{"type":"state","user_id":"mia","state":{"s":"xxx`) || len(s) != len(`{"type":"state","user_id":"mia","state":}`)+512 {
			t.Fatalf("tina: %s", s)
		}
	}

	// Leave clears: mia's new connection starts with neither cursor nor state.
	_ = mia.Close(websocket.StatusNormalClosure, "")
	if l := readRaw(t, tina); l != `{"type":"presence.leave","user_id":"mia"}` {
		t.Fatalf("tina: %s", l)
	}
	readRaw(t, tina2)
	mia = dial(t, f.sessionURL(), f.Mia)
	want = `{"type":"presence.snapshot","session_id":"` + sess + `","users":[` +
		`{"user_id":"mia","name":"Mia","role":"student"},{"user_id":"tina","name":"Tina","role":"tutor","state":{}}]}`
	if s := readRaw(t, mia); s != want {
		t.Fatalf("snapshot after leave:\n got %s\nwant %s", s, want)
	}
}

// TestPresenceStateRate: a burst of 20 states reaches others as a handful of frames, the
// last being the sender's last (latest wins, relayed once the rate allows).
func TestPresenceStateRate(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	mia := dial(t, f.sessionURL(), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina) // join
	start := time.Now()
	for i := range 20 {
		write(t, mia, fmt.Sprintf(`{"type":"state","state":{"n":%d}}`, i))
	}
	var got []string
	for {
		s := readRaw(t, tina)
		got = append(got, s)
		if s == `{"type":"state","user_id":"mia","state":{"n":19}}` {
			break
		}
		if !strings.HasPrefix(s, `{"type":"state","user_id":"mia","state":{"n":`) || len(got) > 5 {
			t.Fatalf("tina got %q", got)
		}
	}
	elapsed := time.Since(start)
	if len(got) > 5 || elapsed > 2*time.Second {
		t.Fatalf("tina got %d frames in %v: %q", len(got), elapsed, got)
	}
	expectOnlyPong(t, tina, "tina after the burst")
	t.Logf("20 states → %d frames in %v", len(got), elapsed)
}

// TestPresenceStateAcrossNodes: a state and a cursor set on one node reach the other node's
// connections, and that node's snapshot carries them.
func TestPresenceStateAcrossNodes(t *testing.T) {
	t.Parallel()
	f, b := twoNodes(t, nil)
	class, sess := f.Class.Id.String(), f.Session.Id.String()
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	mia := dial(t, nodeURL(b, class, sess), f.Mia)
	readRaw(t, mia)
	if j := readRaw(t, tina); j != `{"type":"presence.join","user":{"user_id":"mia","name":"Mia","role":"student"}}` {
		t.Fatalf("tina: %s", j)
	}
	write(t, mia, `{"type":"cursor","x":1,"y":2}`)
	write(t, mia, `{"type":"state","state":{"tool":"eraser"}}`)
	if c := readRaw(t, tina); c != `{"type":"cursor","user_id":"mia","x":1,"y":2}` {
		t.Fatalf("tina: %s", c)
	}
	if s := readRaw(t, tina); s != `{"type":"state","user_id":"mia","state":{"tool":"eraser"}}` {
		t.Fatalf("tina: %s", s)
	}
	tina2 := dial(t, f.sessionURL(), f.Tina)
	want := `{"type":"presence.snapshot","session_id":"` + sess + `","users":[` +
		`{"user_id":"mia","name":"Mia","role":"student","cursor":{"x":1,"y":2},"state":{"tool":"eraser"}},` +
		`{"user_id":"tina","name":"Tina","role":"tutor"}]}`
	if s := readRaw(t, tina2); s != want {
		t.Fatalf("snapshot on the other node:\n got %s\nwant %s", s, want)
	}
}

// TestLeaveGraceOneNode: a reconnect within WS_LEAVE_GRACE tells others nothing and keeps
// the user's state; staying away longer leaves after the grace; a kick (4403) leaves at once.
func TestLeaveGraceOneNode(t *testing.T) {
	t.Parallel()
	const grace = 700 * time.Millisecond
	f := setup(t, map[string]string{"WS_LEAVE_GRACE": grace.String()})
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	mia := dial(t, f.sessionURL(), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina) // join
	write(t, mia, `{"type":"state","state":{"tool":"pen"}}`)
	readRaw(t, tina) // state

	// Within the grace: nothing, and the state is still there.
	_ = mia.CloseNow()
	time.Sleep(grace / 3)
	mia = dial(t, f.sessionURL(), f.Mia)
	if s := readRaw(t, mia); !strings.Contains(s, `{"user_id":"mia","name":"Mia","role":"student","state":{"tool":"pen"}}`) {
		t.Fatalf("mia's snapshot after a reconnect: %s", s)
	}
	time.Sleep(grace)
	expectOnlyPong(t, tina, "tina after mia's reconnect within the grace")

	// Longer: the leave comes after the grace, not before.
	left := time.Now()
	_ = mia.Close(websocket.StatusNormalClosure, "")
	if l := readRaw(t, tina); l != `{"type":"presence.leave","user_id":"mia"}` {
		t.Fatalf("tina: %s", l)
	}
	if d := time.Since(left); d < grace || d > grace+2*time.Second {
		t.Fatalf("leave came %v after the close, want about %v", d, grace)
	}

	// Kicked (membership removed → 4403): the leave comes at once.
	mia = dial(t, f.sessionURL(), f.Mia)
	readRaw(t, mia)
	if j := readRaw(t, tina); j != `{"type":"presence.join","user":{"user_id":"mia","name":"Mia","role":"student"}}` {
		t.Fatalf("tina: %s", j)
	}
	kicked := time.Now()
	r := f.Env.Do(apptest.Request{Method: "DELETE", Path: "/api/v1/classrooms/" + f.Class.Id.String() + "/members/mia/", Token: f.Tina})
	if r.Status != 204 {
		t.Fatalf("remove member = %d", r.Status)
	}
	if l := readRaw(t, tina); l != `{"type":"presence.leave","user_id":"mia"}` {
		t.Fatalf("tina: %s", l)
	}
	if d := time.Since(kicked); d >= grace {
		t.Fatalf("leave after a kick took %v, want at once (grace %v)", d, grace)
	}
}

// TestLeaveGraceAcrossNodes: a user who drops from one node and comes back on the other
// within the grace tells nobody anything; staying away, the leave comes after the grace.
func TestLeaveGraceAcrossNodes(t *testing.T) {
	t.Parallel()
	const grace = 700 * time.Millisecond
	f, b := twoNodes(t, map[string]string{"WS_LEAVE_GRACE": grace.String()})
	class, sess := f.Class.Id.String(), f.Session.Id.String()
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	mia := dial(t, nodeURL(b, class, sess), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina) // join
	_ = mia.CloseNow()
	time.Sleep(grace / 3)
	mia = dial(t, f.sessionURL(), f.Mia) // back, on the other node
	readRaw(t, mia)
	time.Sleep(grace + 300*time.Millisecond)
	expectOnlyPong(t, tina, "tina after mia moved nodes within the grace")
	left := time.Now()
	_ = mia.Close(websocket.StatusNormalClosure, "")
	if l := readRaw(t, tina); l != `{"type":"presence.leave","user_id":"mia"}` {
		t.Fatalf("tina: %s", l)
	}
	if d := time.Since(left); d < grace {
		t.Fatalf("leave came %v after the close, want after the grace %v", d, grace)
	}
}
