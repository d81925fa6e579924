package ws_test

import (
	"testing"
	"time"
)

// TestAloneAcrossNodesKeepsOwnState: a student alone in the session who drops from one
// node and comes back within the grace on the other (which asks for the joining user
// too) finds their own hand, state and cursor in the snapshot.
func TestAloneAcrossNodesKeepsOwnState(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	f, b := twoNodes(t, map[string]string{"WS_LEAVE_GRACE": grace.String()})
	class, sess := f.Class.Id.String(), f.Session.Id.String()
	mia := dial(t, nodeURL(b, class, sess), f.Mia)
	readRaw(t, mia)
	write(t, mia, `{"type":"hand","raised":true}`)
	write(t, mia, `{"type":"state","state":{"tool":"pen"}}`)
	write(t, mia, `{"type":"cursor","x":3,"y":4}`)
	pingPong(t, mia)
	_ = mia.CloseNow()
	time.Sleep(200 * time.Millisecond)
	mia = dial(t, f.sessionURL(), f.Mia) // node A: nobody there, nobody else anywhere
	want := `{"type":"presence.snapshot","session_id":"` + sess + `","users":[` +
		`{"user_id":"mia","name":"Mia","role":"student","cursor":{"x":3,"y":4},"state":{"tool":"pen"}}],` +
		`"hands":[{"user_id":"mia","at":"T"}]}`
	expect(t, mia, "mia's snapshot on node A", want)
	closeAndOutwait(grace, mia)
}
