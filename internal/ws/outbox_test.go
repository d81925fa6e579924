package ws

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Unit tests of the outbox alone: no sockets, no sleeps, microseconds each.

// cursor is a sender's cursor encoding as the fan-out shares it.
func cursor(user string, x int) []byte { return cursorEntry(user, float64(x), 0) }

// drained takes what the outbox holds and renders it as the frames the writer would send,
// releasing the batches as the writer does.
func drained(t *testing.T, o *outbox) (string, takeResult) {
	t.Helper()
	items, res := o.take(nil)
	if res != takeItems {
		return "", res
	}
	var frames []string
	for _, it := range items {
		if it.cursors == nil {
			frames = append(frames, string(it.frame))
			continue
		}
		var entries [][]byte
		for _, r := range it.cursors.refs {
			entries = append(entries, r.wire)
		}
		frames = append(frames, string(appendCursors(nil, entries)))
	}
	releaseItems(items)
	return strings.Join(frames, "\n"), res
}

func wantDrain(t *testing.T, o *outbox, want ...string) {
	t.Helper()
	got, res := drained(t, o)
	if res != takeItems {
		t.Fatalf("take = %d, want items", res)
	}
	if w := strings.Join(want, "\n"); got != w {
		t.Fatalf("drained\n%s\nwant\n%s", got, w)
	}
}

const (
	j1 = `{"type":"presence.join","user":1}`
	j2 = `{"type":"presence.join","user":2}`
)

func cursorFrame(user string, x int) string {
	return fmt.Sprintf(`{"type":"cursor","user_id":"%s","x":%d,"y":0}`, user, x)
}

func TestOutboxFramesInOrder(t *testing.T) {
	t.Parallel()
	o := newOutbox(8)
	o.pushFrame([]byte(j1))
	o.pushCursor("mia", cursor("mia", 1))
	o.pushFrame([]byte(j2))
	wantDrain(t, &o, j1, cursorFrame("mia", 1), j2)
	if _, res := o.take(nil); res != takeIdle {
		t.Fatalf("take after the drain = %d, want idle", res)
	}
}

func TestOutboxCursorBatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		push      func(o *outbox) int // returns how many pushes were coalesced
		want      []string
		coalesced int
	}{
		{
			name: "different senders share a batch",
			push: func(o *outbox) int {
				return pushCursors(o, "mia", 1, "oscar", 2, "tina", 3)
			},
			want: []string{`{"type":"cursors","cursors":[{"user_id":"mia","x":1,"y":0},{"user_id":"oscar","x":2,"y":0},{"user_id":"tina","x":3,"y":0}]}`},
		},
		{
			name: "a sender's second update opens a second batch",
			push: func(o *outbox) int { return pushCursors(o, "mia", 1, "mia", 2) },
			want: []string{cursorFrame("mia", 1), cursorFrame("mia", 2)},
		},
		{
			name: "with two batches waiting the latest replaces the previous",
			push: func(o *outbox) int { return pushCursors(o, "mia", 1, "mia", 2, "oscar", 10, "mia", 3, "mia", 4) },
			want: []string{
				cursorFrame("mia", 1),
				`{"type":"cursors","cursors":[{"user_id":"mia","x":4,"y":0},{"user_id":"oscar","x":10,"y":0}]}`,
			},
			coalesced: 2,
		},
		{
			name: "a frame closes the open batch",
			push: func(o *outbox) int {
				n := pushCursors(o, "mia", 1)
				o.pushFrame([]byte(j1))
				return n + pushCursors(o, "oscar", 2)
			},
			want: []string{cursorFrame("mia", 1), j1, cursorFrame("oscar", 2)},
		},
		{
			name: "batches separated by a frame still count towards the two",
			push: func(o *outbox) int {
				n := pushCursors(o, "mia", 1)
				o.pushFrame([]byte(j1))
				return n + pushCursors(o, "mia", 2, "mia", 3)
			},
			want:      []string{cursorFrame("mia", 1), j1, cursorFrame("mia", 3)},
			coalesced: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newOutbox(8)
			if n := tc.push(&o); n != tc.coalesced {
				t.Fatalf("%d updates coalesced, want %d", n, tc.coalesced)
			}
			wantDrain(t, &o, tc.want...)
		})
	}
}

// pushCursors pushes (user, x) pairs and returns how many were coalesced.
func pushCursors(o *outbox, pairs ...any) int {
	n := 0
	for i := 0; i < len(pairs); i += 2 {
		u := pairs[i].(string)
		if _, c := o.pushCursor(u, cursor(u, pairs[i+1].(int))); c {
			n++
		}
	}
	return n
}

// TestOutboxAfterTakeStartsAfresh: a drain resets the batches, so a sender's next update
// is not coalesced with what was already taken.
func TestOutboxAfterTakeStartsAfresh(t *testing.T) {
	t.Parallel()
	o := newOutbox(8)
	pushCursors(&o, "mia", 1, "mia", 2)
	wantDrain(t, &o, cursorFrame("mia", 1), cursorFrame("mia", 2))
	if n := pushCursors(&o, "mia", 3, "mia", 4); n != 0 {
		t.Fatalf("%d coalesced after a drain, want 0", n)
	}
	wantDrain(t, &o, cursorFrame("mia", 3), cursorFrame("mia", 4))
}

// TestOutboxBound: limit frames may wait; the next is refused as full. Cursor batches do
// not count, and a drain frees the room.
func TestOutboxBound(t *testing.T) {
	t.Parallel()
	o := newOutbox(3)
	for i := range 3 {
		if _, full := o.pushFrame([]byte(j1)); full {
			t.Fatalf("frame %d refused as full, want queued", i+1)
		}
		pushCursors(&o, "mia", i)
	}
	if _, full := o.pushFrame([]byte(j2)); !full {
		t.Fatal("frame 4 with 3 waiting was queued, want full")
	}
	if _, c := o.pushCursor("oscar", cursor("oscar", 1)); c {
		t.Fatal("a cursor was coalesced away by a full outbox")
	}
	got, _ := drained(t, &o)
	if n := strings.Count(got, j1); n != 3 || strings.Contains(got, j2) {
		t.Fatalf("drained %d joins (want 3) and the refused frame: %t", n, strings.Contains(got, j2))
	}
	if _, full := o.pushFrame([]byte(j2)); full {
		t.Fatal("frame refused after a drain")
	}
}

// TestOutboxWake: only a push to an idle outbox wakes the writer; the outbox is idle again
// once take finds nothing.
func TestOutboxWake(t *testing.T) {
	t.Parallel()
	o := newOutbox(8)
	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"first frame", func() bool { w, _ := o.pushFrame([]byte(j1)); return w }, true},
		{"second frame", func() bool { w, _ := o.pushFrame([]byte(j2)); return w }, false},
		{"cursor opening a batch", func() bool { w, _ := o.pushCursor("mia", cursor("mia", 1)); return w }, false},
		{"take with items", func() bool { _, r := o.take(nil); return r == takeItems }, true},
		{"cursor while the writer still runs", func() bool { w, _ := o.pushCursor("mia", cursor("mia", 2)); return w }, false},
		{"take with items", func() bool { _, r := o.take(nil); return r == takeItems }, true},
		{"take finds nothing", func() bool { _, r := o.take(nil); return r == takeIdle }, true},
		{"cursor to the idle outbox", func() bool { w, _ := o.pushCursor("mia", cursor("mia", 3)); return w }, true},
		{"close while the writer runs", func() bool { w, _ := o.close(4400, "bad_request"); return w }, false},
		{"take after close", func() bool { _, r := o.take(nil); return r == takeClosed }, true},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: %t, want %t", s.name, got, s.want)
		}
	}
}

// TestOutboxClose: the first close wins and wakes an idle outbox; later pushes are ignored
// and the writer gets what was queued back, to release.
func TestOutboxClose(t *testing.T) {
	t.Parallel()
	o := newOutbox(1)
	if wake, first := o.close(4429, "rate_limited"); !wake || !first {
		t.Fatalf("close of an idle outbox: wake %t first %t, want both", wake, first)
	}
	if wake, first := o.close(1001, "going_away"); wake || first {
		t.Fatalf("second close: wake %t first %t, want neither", wake, first)
	}
	if code, reason := o.closeCode(); code != 4429 || reason != "rate_limited" {
		t.Fatalf("close code %d %q, want the first: 4429 rate_limited", code, reason)
	}
	if !o.isClosed() {
		t.Fatal("isClosed = false after close")
	}
	if w, full := o.pushFrame([]byte(j1)); w || full {
		t.Fatalf("push after close: wake %t full %t, want ignored", w, full)
	}
	if w, c := o.pushCursor("mia", cursor("mia", 1)); w || c {
		t.Fatalf("cursor after close: wake %t coalesced %t, want ignored", w, c)
	}
	items, res := o.take(nil)
	if res != takeClosed || len(items) != 0 {
		t.Fatalf("take = %d with %d items, want closed and nothing", res, len(items))
	}

	q := newOutbox(8)
	pushCursors(&q, "mia", 1)
	q.pushFrame([]byte(j1))
	q.close(1001, "going_away")
	items, res = q.take(nil)
	if res != takeClosed || len(items) != 2 {
		t.Fatalf("take = %d with %d items, want closed with the 2 queued to release", res, len(items))
	}
	b := items[0].cursors
	releaseItems(items)
	if len(b.refs) != 0 || items[0].cursors != nil || items[1].frame != nil {
		t.Fatal("released items still hold references")
	}
}

// TestOutboxSpareArrays: take swaps the writer's spare array in, so two arrays alternate;
// an idle outbox keeps none and hands the larger back.
func TestOutboxSpareArrays(t *testing.T) {
	t.Parallel()
	o := newOutbox(64)
	for range 40 {
		o.pushFrame([]byte(j1))
	}
	spare := make([]outItem, 0, 4)
	items, _ := o.take(spare)
	if len(items) != 40 || cap(o.items) != 4 {
		t.Fatalf("take: %d items, outbox array cap %d; want 40 and the spare (4)", len(items), cap(o.items))
	}
	releaseItems(items)
	back, res := o.take(items[:0])
	if res != takeIdle || cap(back) < 40 || o.items != nil {
		t.Fatalf("idle take = %d, cap %d, outbox keeps %v; want idle, the larger array back, nothing kept", res, cap(back), o.items)
	}
}

// TestOutboxConcurrentPushers: many fan-out goroutines and one drainer; every frame arrives
// once, in each pusher's order, and the latest cursor of every sender is delivered.
func TestOutboxConcurrentPushers(t *testing.T) {
	t.Parallel()
	const pushers, each = 8, 200
	o := newOutbox(pushers * each)
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := fmt.Sprintf("u%d", p)
			for i := range each {
				o.pushFrame(fmt.Appendf(nil, "%d/%d", p, i))
				o.pushCursor(u, cursor(u, i))
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	next := make([]int, pushers)
	last := map[string]string{}
	drain := func() {
		items, res := o.take(nil)
		if res != takeItems {
			return
		}
		for _, it := range items {
			if it.cursors != nil {
				for _, r := range it.cursors.refs {
					last[r.userID] = string(r.wire)
				}
				continue
			}
			var p, i int
			fmt.Sscanf(string(it.frame), "%d/%d", &p, &i)
			if i != next[p] {
				t.Errorf("pusher %d: frame %d after %d", p, i, next[p]-1)
			}
			next[p] = i + 1
		}
		releaseItems(items)
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		drain()
	}
	drain()
	for p := range pushers {
		u := fmt.Sprintf("u%d", p)
		if next[p] != each || last[u] != string(cursor(u, each-1)) {
			t.Fatalf("pusher %d: %d frames (want %d), last cursor %s", p, next[p], each, last[u])
		}
	}
}

func BenchmarkOutboxCursor(b *testing.B) {
	o := newOutbox(64)
	wires := make([][]byte, 20)
	users := make([]string, 20)
	for i := range users {
		users[i] = fmt.Sprintf("user-%02d", i)
		wires[i] = cursor(users[i], i)
	}
	var spare []outItem
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o.pushCursor(users[i%20], wires[i%20])
		if i%20 == 19 {
			items, _ := o.take(spare)
			releaseItems(items)
			spare = items[:0]
		}
	}
}

// TestOutboxLossy: a reaction is queued while fewer than half of limit frames wait and
// dropped beyond, never reporting the outbox full (a reaction never closes a connection).
func TestOutboxLossy(t *testing.T) {
	t.Parallel()
	o := newOutbox(4)
	if wake, dropped := o.pushLossy([]byte("r1")); !wake || dropped {
		t.Fatalf("first reaction: wake %t dropped %t", wake, dropped)
	}
	if _, dropped := o.pushLossy([]byte("r2")); dropped {
		t.Fatal("second reaction dropped with 1 of 4 frames waiting")
	}
	if _, dropped := o.pushLossy([]byte("r3")); !dropped {
		t.Fatal("third reaction queued with 2 of 4 frames waiting")
	}
	if _, full := o.pushFrame([]byte("join")); full {
		t.Fatal("a frame that must not drop was refused with 2 of 4 waiting")
	}
	items, _ := o.take(nil)
	if len(items) != 3 || string(items[0].frame) != "r1" || string(items[1].frame) != "r2" || string(items[2].frame) != "join" {
		t.Fatalf("queued %d items", len(items))
	}
}
