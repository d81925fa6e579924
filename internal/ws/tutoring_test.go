package ws_test

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/m4sh/backend/internal/apptest"
)

// handAt matches a hand frame's or snapshot entry's server time.
var handAt = regexp.MustCompile(`"at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`)

// noAt replaces the server times in s by "T".
func noAt(s string) string { return handAt.ReplaceAllString(s, `"at":"T"`) }

// addSam makes sam a member of the fixture's classroom.
func addSam(t *testing.T, f fixture) {
	t.Helper()
	apptest.MustCreate[json.RawMessage](t, f.Env, f.Tina, "/api/v1/classrooms/"+f.Class.Id.String()+"/members/", map[string]any{"user_id": "sam"})
}

// expect reads the next frame of c and compares it, hand times replaced by "T".
func expect(t *testing.T, c *websocket.Conn, who, want string) {
	t.Helper()
	if got := noAt(readRaw(t, c)); got != want {
		t.Fatalf("%s:\n got %s\nwant %s", who, got, want)
	}
}

// TestTutoringRoles: what a tutor and a student may send; a refusal is an error frame
// (the connection stays) and reaches nobody else.
func TestTutoringRoles(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	mia := dial(t, f.sessionURL(), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina) // join
	const (
		handErr      = `{"type":"error","code":"forbidden","message":"students raise and lower their own hand; tutors lower anyone's","for":"hand"}`
		spotlightErr = `{"type":"error","code":"forbidden","message":"only a tutor may turn the spotlight on or off","for":"spotlight"}`
		viewportErr  = `{"type":"error","code":"forbidden","message":"only a tutor may send the spotlight viewport","for":"viewport"}`
	)
	cases := []struct {
		name     string
		from     *websocket.Conn
		frame    string
		toSender string // "" nothing
		toOther  string // "" nothing
	}{
		{"student raises own hand", mia, `{"type":"hand","raised":true}`, `{"type":"hand","user_id":"mia","raised":true,"at":"T"}`, `{"type":"hand","user_id":"mia","raised":true,"at":"T"}`},
		{"student raises own hand again", mia, `{"type":"hand","raised":true,"user_id":"mia"}`, "", ""},
		{"student lowers tutor's hand", mia, `{"type":"hand","raised":false,"user_id":"tina"}`, handErr, ""},
		{"student raises tutor's hand", mia, `{"type":"hand","raised":true,"user_id":"tina"}`, handErr, ""},
		{"student spotlight", mia, `{"type":"spotlight","on":true}`, spotlightErr, ""},
		{"student viewport", mia, `{"type":"viewport","x":0,"y":0,"w":10,"h":10}`, viewportErr, ""},
		{"student reaction", mia, `{"type":"reaction","emoji":"❓"}`, "", `{"type":"reaction","user_id":"mia","emoji":"❓"}`},
		{"tutor raises own hand", tina, `{"type":"hand","raised":true}`, handErr, ""},
		{"tutor raises student's hand", tina, `{"type":"hand","raised":true,"user_id":"mia"}`, handErr, ""},
		{"tutor lowers student's hand", tina, `{"type":"hand","raised":false,"user_id":"mia"}`, `{"type":"hand","user_id":"mia","raised":false,"at":"T"}`, `{"type":"hand","user_id":"mia","raised":false,"at":"T"}`},
		{"tutor lowers a lowered hand", tina, `{"type":"hand","raised":false,"user_id":"mia"}`, "", ""},
		{"tutor viewport without spotlight", tina, `{"type":"viewport","x":0,"y":0,"w":10,"h":10}`, "", ""},
		{"tutor spotlight on", tina, `{"type":"spotlight","on":true}`, `{"type":"spotlight","user_id":"tina","on":true}`, `{"type":"spotlight","user_id":"tina","on":true}`},
		{"tutor viewport", tina, `{"type":"viewport","x":-5,"y":2.5,"w":1280,"h":720}`, "", `{"type":"viewport","user_id":"tina","x":-5,"y":2.5,"w":1280,"h":720}`},
		{"tutor reaction", tina, `{"type":"reaction","emoji":"👏"}`, "", `{"type":"reaction","user_id":"tina","emoji":"👏"}`},
		{"tutor spotlight off", tina, `{"type":"spotlight","on":false}`, `{"type":"spotlight","user_id":"tina","on":false}`, `{"type":"spotlight","user_id":"tina","on":false}`},
		{"student lowers own hand (not raised)", mia, `{"type":"hand","raised":false}`, "", ""},
	}
	for _, tc := range cases {
		other := tina
		if tc.from == tina {
			other = mia
		}
		write(t, tc.from, tc.frame)
		if tc.toSender != "" {
			expect(t, tc.from, tc.name+" (sender)", tc.toSender)
		}
		expectOnlyPong(t, tc.from, tc.name+" (sender)")
		if tc.toOther != "" {
			expect(t, other, tc.name+" (other)", tc.toOther)
		}
		expectOnlyPong(t, other, tc.name+" (other)")
	}
	// Frames that break the schema still close with 4400.
	for _, bad := range []string{
		`{"type":"reaction","emoji":"🦄"}`,
		`{"type":"viewport","x":0,"y":0,"w":0,"h":10}`,
		`{"type":"hand"}`,
		`{"type":"spotlight","on":"yes"}`,
		`{"type":"hand","raised":true,"user_id":""}`,
	} {
		c := dial(t, f.sessionURL(), f.Mia)
		readRaw(t, c)
		write(t, c, bad)
		if code, reason := closeOf(c, 5*time.Second); code != 4400 || reason != "bad_request" {
			t.Fatalf("%s: closed %d %q, want 4400 bad_request", bad, code, reason)
		}
	}
}

// TestHandsQueueAndSpotlightSnapshot: hands are listed in the order raised; a late joiner
// gets the queue and the spotlight with its latest viewport; a leave lowers the hand and
// the tutor's leave ends the spotlight.
func TestHandsQueueAndSpotlightSnapshot(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	addSam(t, f)
	sess := f.Session.Id.String()
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	sam := dial(t, f.sessionURL(), f.Sam)
	readRaw(t, sam)
	readRaw(t, tina)
	mia := dial(t, f.sessionURL(), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina)
	readRaw(t, sam)
	write(t, sam, `{"type":"hand","raised":true}`)
	pingPong(t, sam)
	time.Sleep(5 * time.Millisecond) // distinct times
	write(t, mia, `{"type":"hand","raised":true}`)
	pingPong(t, mia)
	write(t, tina, `{"type":"spotlight","on":true}`)
	write(t, tina, `{"type":"viewport","x":10,"y":20,"w":800,"h":600}`)
	pingPong(t, tina)
	time.Sleep(150 * time.Millisecond) // the viewport is relayed at once; nothing waits
	users := `"users":[{"user_id":"mia","name":"Mia","role":"student"},{"user_id":"sam","name":"Sam","role":"student"},{"user_id":"tina","name":"Tina","role":"tutor"}]`
	late := dial(t, f.sessionURL(), f.Mia)
	expect(t, late, "late joiner", `{"type":"presence.snapshot","session_id":"`+sess+`",`+users+
		`,"hands":[{"user_id":"sam","at":"T"},{"user_id":"mia","at":"T"}],"spotlight":{"user_id":"tina","viewport":{"x":10,"y":20,"w":800,"h":600}}}`)
	// Sam leaves: his hand goes with him.
	_ = sam.Close(websocket.StatusNormalClosure, "")
	expect(t, late, "late joiner", `{"type":"presence.leave","user_id":"sam"}`)
	users = `"users":[{"user_id":"mia","name":"Mia","role":"student"},{"user_id":"tina","name":"Tina","role":"tutor"}]`
	expect(t, dial(t, f.sessionURL(), f.Mia), "after sam left", `{"type":"presence.snapshot","session_id":"`+sess+`",`+users+
		`,"hands":[{"user_id":"mia","at":"T"}],"spotlight":{"user_id":"tina","viewport":{"x":10,"y":20,"w":800,"h":600}}}`)
	// The tutor leaves: the spotlight goes; mia lowers her hand herself.
	_ = tina.Close(websocket.StatusNormalClosure, "")
	expect(t, late, "late joiner", `{"type":"presence.leave","user_id":"tina"}`)
	write(t, mia, `{"type":"hand","raised":false}`)
	expect(t, late, "late joiner", `{"type":"hand","user_id":"mia","raised":false,"at":"T"}`)
	expect(t, dial(t, f.sessionURL(), f.Mia), "after tina left", `{"type":"presence.snapshot","session_id":"`+sess+`","users":[{"user_id":"mia","name":"Mia","role":"student"}]}`)
}

// TestTutoringRates: at most 3 reactions per second per user (more dropped); viewports
// coalesced to 10 per second, the last one always relayed.
func TestTutoringRates(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	mia := dial(t, f.sessionURL(), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina)
	for range 10 {
		write(t, mia, `{"type":"reaction","emoji":"👍"}`)
	}
	pingPong(t, mia)
	for range 3 {
		expect(t, tina, "tina", `{"type":"reaction","user_id":"mia","emoji":"👍"}`)
	}
	expectOnlyPong(t, tina, "tina after 10 reactions at once")
	expectOnlyPong(t, mia, "mia after her reactions") // not a protocol error, not echoed

	write(t, tina, `{"type":"spotlight","on":true}`)
	readRaw(t, tina)
	readRaw(t, mia)
	start := time.Now()
	for i := range 30 {
		write(t, tina, `{"type":"viewport","x":`+itoa(i)+`,"y":0,"w":100,"h":100}`)
	}
	n := 0
	for {
		s := readRaw(t, mia)
		n++
		if s == `{"type":"viewport","user_id":"tina","x":29,"y":0,"w":100,"h":100}` {
			break
		}
	}
	if el := time.Since(start); n > 3 || el > 2*time.Second {
		t.Fatalf("30 viewports at once reached mia as %d frames in %v, want at most 3 (10/s coalesced)", n, el)
	}
	expectOnlyPong(t, mia, "mia after the viewports")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestTutoringAcrossNodes: hands and the spotlight set on one node reach the other, a
// joiner on a node that opens the session gets them in the snapshot, and a hand survives
// a move to the other node within the leave grace.
func TestTutoringAcrossNodes(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	f, b := twoNodes(t, map[string]string{"WS_LEAVE_GRACE": grace.String()})
	class, sess := f.Class.Id.String(), f.Session.Id.String()
	tina := dial(t, nodeURL(b, class, sess), f.Tina)
	readRaw(t, tina)
	mia := dial(t, nodeURL(b, class, sess), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina)
	write(t, mia, `{"type":"hand","raised":true}`)
	expect(t, tina, "tina", `{"type":"hand","user_id":"mia","raised":true,"at":"T"}`)
	write(t, tina, `{"type":"spotlight","on":true}`)
	write(t, tina, `{"type":"viewport","x":1,"y":2,"w":3,"h":4}`)
	expect(t, tina, "tina", `{"type":"spotlight","user_id":"tina","on":true}`)
	expect(t, mia, "mia", `{"type":"hand","user_id":"mia","raised":true,"at":"T"}`)
	expect(t, mia, "mia", `{"type":"spotlight","user_id":"tina","on":true}`)
	expect(t, mia, "mia", `{"type":"viewport","user_id":"tina","x":1,"y":2,"w":3,"h":4}`)
	// mia moves to node A (nobody there) within the grace: her hand and the spotlight are in
	// her snapshot, and tina hears nothing.
	_ = mia.CloseNow()
	time.Sleep(100 * time.Millisecond)
	mia = dial(t, f.sessionURL(), f.Mia)
	want := `{"type":"presence.snapshot","session_id":"` + sess + `","users":[{"user_id":"mia","name":"Mia","role":"student"},{"user_id":"tina","name":"Tina","role":"tutor"}],` +
		`"hands":[{"user_id":"mia","at":"T"}],"spotlight":{"user_id":"tina","viewport":{"x":1,"y":2,"w":3,"h":4}}}`
	expect(t, mia, "mia on node A", want)
	// Across nodes from here: tina (B) pans, lowers mia's hand.
	write(t, tina, `{"type":"viewport","x":5,"y":6,"w":7,"h":8}`)
	expect(t, mia, "mia on node A", `{"type":"viewport","user_id":"tina","x":5,"y":6,"w":7,"h":8}`)
	write(t, tina, `{"type":"hand","raised":false,"user_id":"mia"}`)
	expect(t, mia, "mia on node A", `{"type":"hand","user_id":"mia","raised":false,"at":"T"}`)
	expect(t, tina, "tina", `{"type":"hand","user_id":"mia","raised":false,"at":"T"}`)
	time.Sleep(grace + 300*time.Millisecond)
	expectOnlyPong(t, tina, "tina after mia moved nodes within the grace")
	closeAndOutwait(grace, tina, mia)
}
