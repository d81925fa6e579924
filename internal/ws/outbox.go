package ws

import (
	"sync"
	"sync/atomic"
)

// outbox is a connection's queue of frames to send, between the session's fan-out (many
// goroutines pushing) and the connection's one writer (draining). Pushing never blocks.
//
//   - Frames (presence events, pongs) are kept in order and must not be lost: at most limit
//     of them may wait; one more means the peer cannot keep up (pushFrame reports full).
//   - Cursor positions are grouped into batches, one position per sender in each, sent as
//     one frame per batch. A slow reader's cursors coalesce, latest position winning.
//   - The writer runs only while there is something to send: a push to an idle outbox says
//     so (wake), and take on an empty one marks it idle again, so that at most one writer
//     runs and an idle connection needs none.
//   - close records the first close code and reason and empties the outbox; pushes after it
//     are ignored.
//
// It is the same shape as centrifugal/centrifuge's internal/queue, with coalescing.
type outbox struct {
	mu    sync.Mutex
	limit int       // frames that may wait (WS_SEND_QUEUE)
	items []outItem // in send order
	// frames counts the frames in items (bounded by limit; cursor batches do not count).
	frames int
	batch  int // index in items of the open cursor batch, or -1
	// batches counts the cursor batches in items: a sender's second update opens a new batch
	// while fewer than maxCursorBatches wait, and replaces the first only beyond that.
	batches int
	// active is true from a push that woke the writer until a take finds nothing to send.
	active bool
	closed atomic.Bool // read without mu by the writer between frames and by the reader
	code   int         // close code and reason once closed
	reason string
}

// outItem is one frame to send: a ready frame, or a batch of cursor positions (at most one
// per sender: the latest) encoded when it is sent.
type outItem struct {
	frame   []byte
	cursors *cursorBatch
	// stateOf is the user a presence state or viewport frame is about (see pushLatest);
	// empty otherwise. latest says which of the two it is.
	stateOf string
	latest  latestKind
}

// latestKind is a kind of frame of which a reader needs only a user's latest.
type latestKind uint8

const (
	latestState latestKind = iota + 1
	latestViewport
)

type cursorRef struct {
	userID string
	wire   []byte
}

// cursorBatch is a batch of cursor positions waiting in an outbox. Batches are pooled: under
// load every connection opens tens of batches a second, and allocating them was most of the
// process's garbage; an idle connection holds none.
type cursorBatch struct {
	refs []cursorRef
}

var cursorBatches = sync.Pool{New: func() any { return &cursorBatch{refs: make([]cursorRef, 0, 32)} }}

func (b *cursorBatch) release() {
	clear(b.refs) // drop the references to the senders' encodings
	b.refs = b.refs[:0]
	cursorBatches.Put(b)
}

// maxCursorBatches is how many cursor batches may wait for one connection before a sender's
// new position replaces its previous one. A writer pausing under load (see pacer) then still
// delivers every update of a sender whose two updates fall in one pause; only a receiver
// that is really behind loses intermediate positions.
const maxCursorBatches = 2

func newOutbox(limit int) outbox { return outbox{limit: limit, batch: -1} }

// wakeLocked marks the outbox active and reports whether it was idle (the caller starts the
// writer); o.mu is held.
func (o *outbox) wakeLocked() bool {
	if o.active {
		return false
	}
	o.active = true
	return true
}

// pushCursor adds a sender's position to the open batch. When the sender is already in it,
// the position goes into a new batch, or replaces the previous one once maxCursorBatches
// wait (coalesced: an update was superseded).
func (o *outbox) pushCursor(userID string, wire []byte) (wake, coalesced bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Load() {
		return false, false
	}
	if o.batch >= 0 {
		b := o.items[o.batch].cursors
		for i := range b.refs {
			if b.refs[i].userID == userID {
				if o.batches >= maxCursorBatches {
					b.refs[i].wire = wire
					return false, true
				}
				return o.openBatchLocked(userID, wire), false
			}
		}
		b.refs = append(b.refs, cursorRef{userID, wire})
		return false, false
	}
	return o.openBatchLocked(userID, wire), false
}

func (o *outbox) openBatchLocked(userID string, wire []byte) bool {
	b := cursorBatches.Get().(*cursorBatch)
	b.refs = append(b.refs, cursorRef{userID, wire})
	o.items = append(o.items, outItem{cursors: b})
	o.batch = len(o.items) - 1
	o.batches++
	return o.wakeLocked()
}

// pushFrame queues a frame that must not be dropped. full means limit frames already wait:
// the frame was not queued and the peer cannot keep up.
func (o *outbox) pushFrame(f []byte) (wake, full bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Load() {
		return false, false
	}
	if o.frames >= o.limit {
		return false, true
	}
	o.items = append(o.items, outItem{frame: f})
	o.frames++
	o.batch = -1 // later cursors go after this frame
	return o.wakeLocked(), false
}

// pushLossy queues a frame a slow reader may go without (a reaction): it is dropped rather
// than queued once half of limit frames wait, so that it never closes a connection.
func (o *outbox) pushLossy(f []byte) (wake, dropped bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Load() {
		return false, false
	}
	if o.frames >= o.limit/2 {
		return false, true
	}
	o.items = append(o.items, outItem{frame: f})
	o.frames++
	o.batch = -1
	return o.wakeLocked(), false
}

// pushLatest queues a user's presence state or viewport frame. When a frame of the same
// kind and user still waits and no other frame (a leave, a join) was queued after it, it is
// replaced (coalesced: the reader gets the latest only); otherwise it is queued like
// pushFrame.
func (o *outbox) pushLatest(kind latestKind, userID string, f []byte) (wake, full, coalesced bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Load() {
		return false, false, false
	}
	for i := len(o.items) - 1; i >= 0; i-- {
		it := &o.items[i]
		if it.cursors != nil || (it.stateOf != "" && (it.stateOf != userID || it.latest != kind)) {
			continue
		}
		if it.stateOf == userID {
			it.frame = f
			return false, false, true
		}
		break // a frame that must keep its order
	}
	if o.frames >= o.limit {
		return false, true, false
	}
	o.items = append(o.items, outItem{frame: f, stateOf: userID, latest: kind})
	o.frames++
	o.batch = -1
	return o.wakeLocked(), false, false
}

// close records why the connection closes; the first call wins (first). The writer must
// see it: wake says it has to be started.
func (o *outbox) close(code int, reason string) (wake, first bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Load() {
		return false, false
	}
	o.closed.Store(true)
	o.code, o.reason = code, reason
	return o.wakeLocked(), true
}

// isClosed reports whether close was called.
func (o *outbox) isClosed() bool { return o.closed.Load() }

// closeCode is the code and reason close recorded.
func (o *outbox) closeCode() (int, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.code, o.reason
}

// takeResult says what take found.
type takeResult uint8

const (
	takeItems  takeResult = iota + 1 // items to send
	takeIdle                         // nothing to send: the writer exits
	takeClosed                       // closed: the writer releases the items and finishes
)

// take hands the writer everything queued and gives the outbox spare (emptied) to fill
// next, so that two arrays alternate and none is allocated per drain. When nothing is
// queued the outbox goes idle and keeps no array: the larger of the two is returned for the
// writer to keep while it runs. When closed, the items are returned to be released.
func (o *outbox) take(spare []outItem) ([]outItem, takeResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	items := o.items
	if o.closed.Load() {
		o.items = nil
		return items, takeClosed
	}
	if len(items) == 0 {
		o.active = false
		o.items = nil
		if cap(items) > cap(spare) {
			return items, takeIdle
		}
		return spare, takeIdle
	}
	o.items = spare[:0]
	o.frames, o.batch, o.batches = 0, -1, 0
	return items, takeItems
}

// releaseItems returns the items' cursor batches to their pool and drops every reference.
func releaseItems(items []outItem) {
	for i := range items {
		if b := items[i].cursors; b != nil {
			b.release()
		}
	}
	clear(items)
}
