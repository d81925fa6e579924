package ws_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/ws"
)

// TestPausedWriterCoalesces: while the process is behind, a writer pauses after a write;
// what arrives meanwhile leaves in batches (a sender's repeated update opens a second batch,
// and replaces its position only once two batches wait), and a close asked for during the
// pause is not held up.
func TestPausedWriterCoalesces(t *testing.T) {
	t.Parallel()
	f := setup(t, map[string]string{"WS_MAX_WRITE_PAUSE": "0"}) // the test holds the pause
	tina := dial(t, f.sessionURL(), f.Tina)
	read(t, tina)
	mia := dial(t, f.sessionURL(), f.Mia)
	read(t, mia)
	read(t, tina) // mia's join
	oscar := dial(t, f.sessionURL(), f.oscarMember(t))
	read(t, oscar)
	read(t, tina) // oscar's join
	read(t, mia)

	const pause = 500 * time.Millisecond
	ws.HoldWritePause(f.Env.App.WS, pause)
	write(t, mia, `{"type":"cursor","x":1,"y":0}`)
	if m := read(t, tina); m.Type != "cursor" || m.UserID != "mia" || m.X != 1 {
		t.Fatalf("first update = %+v, want mia's cursor at once", m)
	}
	sent := time.Now()
	// tina's writer now pauses; these arrive within the pause. mia's second update opens a
	// second batch; her third, with two batches waiting, replaces the second.
	write(t, mia, `{"type":"cursor","x":2,"y":0}`)
	write(t, oscar, `{"type":"cursor","x":10,"y":0}`)
	write(t, mia, `{"type":"cursor","x":3,"y":0}`)
	write(t, mia, `{"type":"cursor","x":4,"y":0}`)
	// The server may see oscar's update before or after mia's third (different connections):
	// either way two frames arrive, mia's positions 2 then 4 (3 replaced), oscar's once.
	var mias []float64
	oscars := 0
	for range 2 {
		m := read(t, tina)
		switch m.Type {
		case "cursor":
			m.Cursors = append(m.Cursors, struct {
				UserID string  `json:"user_id"`
				X      float64 `json:"x"`
				Y      float64 `json:"y"`
			}{m.UserID, m.X, m.Y})
		case "cursors":
		default:
			t.Fatalf("after the pause: %+v, want cursor frames", m)
		}
		for _, c := range m.Cursors {
			switch {
			case c.UserID == "mia":
				mias = append(mias, c.X)
			case c.UserID == "oscar" && c.X == 10:
				oscars++
			default:
				t.Fatalf("unexpected position %+v", c)
			}
		}
	}
	if fmt.Sprint(mias) != "[2 4]" || oscars != 1 {
		t.Fatalf("mia's positions %v (want [2 4]), oscar's %d (want 1)", mias, oscars)
	}
	if waited := time.Since(sent); waited > 5*pause {
		t.Fatalf("batches took %v, want about the pause (%v)", waited, pause)
	}

	// tina's writer is pausing again; a bad frame from her closes at once all the same.
	asked := time.Now()
	write(t, tina, `{"type":"nope"}`)
	if code, reason := closeOf(tina, 5*time.Second); code != ws.CodeBadRequest || reason != ws.ReasonBadRequest {
		t.Fatalf("close = %d %q, want 4400 bad_request", code, reason)
	}
	if took := time.Since(asked); took > pause+2*time.Second {
		t.Fatalf("close took %v", took)
	}
}
