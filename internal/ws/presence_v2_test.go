package ws_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// pingPong makes sure the server has handled everything c sent before: frames are handled
// in order, and the pong is queued after whatever they queued.
func pingPong(t *testing.T, c *websocket.Conn) {
	t.Helper()
	write(t, c, `{"type":"ping"}`)
	for {
		if f := read(t, c); f.Type == "pong" {
			return
		}
	}
}

// closeAndOutwait closes the connections and waits out the leave grace, so that no grace
// timer outlives the test's services.
func closeAndOutwait(grace time.Duration, conns ...*websocket.Conn) {
	for _, c := range conns {
		_ = c.Close(websocket.StatusNormalClosure, "")
	}
	time.Sleep(grace + 500*time.Millisecond)
}

// TestSnapshotFromAnotherNode: a joiner on a node that had nobody in the session yet gets
// in its snapshot the cursor and state of a user connected to the other node (the node
// asks the others when it opens the session).
func TestSnapshotFromAnotherNode(t *testing.T) {
	t.Parallel()
	f, b := twoNodes(t, nil)
	class, sess := f.Class.Id.String(), f.Session.Id.String()
	mia := dial(t, nodeURL(b, class, sess), f.Mia)
	readRaw(t, mia)
	write(t, mia, `{"type":"cursor","x":7,"y":8}`)
	write(t, mia, `{"type":"state","state":{"color":"#1971c2","name":"Mia"}}`)
	pingPong(t, mia)
	tina := dial(t, f.sessionURL(), f.Tina)
	want := `{"type":"presence.snapshot","session_id":"` + sess + `","users":[` +
		`{"user_id":"mia","name":"Mia","role":"student","cursor":{"x":7,"y":8},"state":{"color":"#1971c2","name":"Mia"}},` +
		`{"user_id":"tina","name":"Tina","role":"tutor"}]}`
	if s := readRaw(t, tina); s != want {
		t.Fatalf("snapshot on the node that opened the session:\n got %s\nwant %s", s, want)
	}
}

// TestLeaveGraceAcrossNodesKeepsState: a user who drops from one node and comes back
// within the grace on a node that has nobody else in the session finds their own state and
// everyone's in the snapshot, and nobody hears of the move.
func TestLeaveGraceAcrossNodesKeepsState(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	f, b := twoNodes(t, map[string]string{"WS_LEAVE_GRACE": grace.String()})
	class, sess := f.Class.Id.String(), f.Session.Id.String()
	tina := dial(t, nodeURL(b, class, sess), f.Tina)
	readRaw(t, tina)
	write(t, tina, `{"type":"state","state":{"tool":"laser"}}`)
	mia := dial(t, nodeURL(b, class, sess), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina) // join
	write(t, mia, `{"type":"state","state":{"tool":"pen"}}`)
	write(t, mia, `{"type":"cursor","x":3,"y":4}`)
	readRaw(t, tina) // state
	readRaw(t, tina) // cursor
	_ = mia.CloseNow()
	time.Sleep(200 * time.Millisecond)
	mia = dial(t, f.sessionURL(), f.Mia) // node A: nobody there yet
	want := `{"type":"presence.snapshot","session_id":"` + sess + `","users":[` +
		`{"user_id":"mia","name":"Mia","role":"student","cursor":{"x":3,"y":4},"state":{"tool":"pen"}},` +
		`{"user_id":"tina","name":"Tina","role":"tutor","state":{"tool":"laser"}}]}`
	if s := readRaw(t, mia); s != want {
		t.Fatalf("snapshot after moving nodes within the grace:\n got %s\nwant %s", s, want)
	}
	time.Sleep(grace + 300*time.Millisecond)
	expectOnlyPong(t, tina, "tina after mia moved nodes within the grace")
	closeAndOutwait(grace, tina, mia)
}

// TestStateRatePerUserAcrossNodes: one user's states from tabs on two nodes share one rate
// of 5 per second (not 5 per node), and the others converge on the last one.
func TestStateRatePerUserAcrossNodes(t *testing.T) {
	t.Parallel()
	f, b := twoNodes(t, nil)
	class, sess := f.Class.Id.String(), f.Session.Id.String()
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	miaA := dial(t, f.sessionURL(), f.Mia)
	readRaw(t, miaA)
	readRaw(t, tina) // join
	miaB := dial(t, nodeURL(b, class, sess), f.Mia)
	readRaw(t, miaB)
	const n = 50 // over 1 s: 25 per node
	start := time.Now()
	for i := range n {
		c := miaA
		if i%2 == 1 {
			c = miaB
		}
		write(t, c, fmt.Sprintf(`{"type":"state","state":{"n":%d}}`, i))
		time.Sleep(20 * time.Millisecond)
	}
	last := fmt.Sprintf(`{"type":"state","user_id":"mia","state":{"n":%d}}`, n-1)
	var got []string
	prev := -1
	for {
		s := readRaw(t, tina)
		var k int
		if _, err := fmt.Sscanf(s, `{"type":"state","user_id":"mia","state":{"n":%d}}`, &k); err != nil || k <= prev {
			t.Fatalf("tina got %s after %q: want mia's states in the order set", s, got)
		}
		prev = k
		got = append(got, s)
		if s == last {
			break
		}
	}
	elapsed := time.Since(start)
	// 5 per second per user, plus the first at once; per node it would be twice that. Two
	// nodes may both relay within one NATS round trip of each other (README), which a loaded
	// machine makes common, so the bound sits halfway between the two rates.
	if limit := int(elapsed/(133*time.Millisecond)) + 2; len(got) > limit {
		t.Fatalf("tina got %d states in %v from two nodes, want at most %d (5/s per user): %q", len(got), elapsed, limit, got)
	}
	t.Logf("%d states from two nodes → %d frames in %v", n, len(got), elapsed)
}
