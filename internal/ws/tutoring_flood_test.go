package ws_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestHandFloodIsBounded: a student toggling their hand as fast as frames go is limited to
// 5 changes per second (burst 10); the others receive that many hand frames and stay open,
// and the student is told with a rate_limited error frame at most once per second.
func TestHandFloodIsBounded(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	addSam(t, f)
	tina := dial(t, f.sessionURL(), f.Tina)
	readRaw(t, tina)
	sam := dial(t, f.sessionURL(), f.Sam)
	readRaw(t, sam)
	readRaw(t, tina)
	mia := dial(t, f.sessionURL(), f.Mia)
	readRaw(t, mia)
	readRaw(t, tina)
	readRaw(t, sam)

	const limited = `{"type":"error","code":"rate_limited","message":"more than 5 hand or spotlight changes per second","for":"hand"}`
	type tally struct{ hands, errs, other int }
	done := make(chan tally, 1)
	go func() { // mia reads while she floods, as a client would
		var n tally
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			_, b, err := mia.Read(ctx)
			switch s := string(b); {
			case err != nil:
				done <- tally{-1, -1, -1}
				return
			case s == `{"type":"pong"}`:
				done <- n
				return
			case s == limited:
				n.errs++
			case strings.HasPrefix(s, `{"type":"hand","user_id":"mia"`):
				n.hands++
			default:
				n.other++
			}
		}
	}()
	const frames = 2000
	start := time.Now()
	for i := range frames {
		write(t, mia, `{"type":"hand","raised":`+map[bool]string{true: "true", false: "false"}[i%2 == 0]+`}`)
	}
	write(t, mia, `{"type":"ping"}`)
	got := <-done
	el := time.Since(start)
	maxHands := 10 + int(math.Ceil(el.Seconds()*5))
	maxErrs := 1 + int(el.Seconds())
	if got.hands < 10 || got.hands > maxHands || got.errs < 1 || got.errs > maxErrs || got.other != 0 {
		t.Fatalf("mia got %d hand frames (want 10..%d in %v), %d rate_limited errors (want 1..%d), %d others", got.hands, maxHands, el, got.errs, maxErrs, got.other)
	}
	// Everything mia sent was handled before her pong: tina's and sam's hand frames are
	// queued before their own pongs, and they are still connected.
	for name, c := range map[string]*websocket.Conn{"tina": tina, "sam": sam} {
		write(t, c, `{"type":"ping"}`)
		n := 0
		for {
			s := readRaw(t, c)
			if s == `{"type":"pong"}` {
				break
			}
			if !strings.HasPrefix(s, `{"type":"hand","user_id":"mia"`) {
				t.Fatalf("%s: unexpected frame %s", name, s)
			}
			n++
		}
		if n != got.hands {
			t.Errorf("%s got %d hand frames, mia %d", name, n, got.hands)
		}
	}
}
