package presence

import (
	"sync"
	"time"
)

// relay is one user's coalesced stream of one kind of update (presence state, spotlight
// viewport): at most one is published per interval, counted from the user's last relayed
// update of that kind on any node (the room's latest entry); an update within the interval
// waits, replaced by any later one, and the latest is published when the interval has
// passed, so everyone converges on the user's last value.
type relay struct {
	kind    Kind
	mu      sync.Mutex
	value   []byte    // the latest offered (published or waiting)
	setAt   time.Time // when value was offered
	timer   *time.Timer
	pending bool
	// sent is the event this node last published: when the user's last relay is another
	// node's, this one yields a little (relayYield) so that two nodes with an update of
	// the same user waiting do not both relay at the end of the same interval.
	sent *Event
}

// relayed is a user's last relayed update of one kind as a room saw it.
type relayed struct {
	at    time.Time // when the room saw it
	setAt int64     // when it was set (Event.At)
	ev    *Event
}

// record takes e as the last relayed update unless it is older than the one recorded.
func (d *relayed) record(e *Event, now time.Time) bool {
	if e.At < d.setAt {
		return false
	}
	d.at, d.setAt, d.ev = now, e.At, e
	return true
}

// relayYield is the part of an interval a node waits beyond it when the user's last relay
// came from another node.
const relayYield = 10

// offer sets the relay's value and publishes it now or when the interval allows.
func (c *Conn) offer(rl *relay, interval time.Duration, v []byte) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.value = v
	rl.setAt = c.r.hub.opts.Now()
	if rl.pending {
		return // the waiting relay sends this one
	}
	c.relayLocked(rl, interval)
}

// relayLocked publishes rl's value, or arms its timer when the user's last relay of this
// kind (from any node) is less than interval ago; rl.mu is held.
func (c *Conn) relayLocked(rl *relay, interval time.Duration) {
	last := c.r.lastRelayed(c.m.user.UserID, rl.kind)
	if last.setAt > rl.setAt.UnixMicro() {
		rl.pending = false // another node relayed a newer one of the user's
		return
	}
	wait := interval - c.r.hub.opts.Now().Sub(last.at)
	if last.ev != nil && last.ev != rl.sent {
		wait += interval / relayYield
	}
	if wait > 0 && !last.at.IsZero() {
		rl.pending = true
		rl.timer = time.AfterFunc(wait, func() { c.flush(rl, interval) })
		return
	}
	rl.pending = false
	rl.sent = c.publishRelay(rl.kind, rl.value, rl.setAt)
}

// flush publishes a waiting value once its wait is over; another node's relay of the same
// user in the meantime makes it wait again.
func (c *Conn) flush(rl *relay, interval time.Duration) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if !rl.pending {
		return // stopped: the user left
	}
	c.relayLocked(rl, interval)
}

// stop cancels a waiting publication (the user left).
func (rl *relay) stop() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.timer != nil {
		rl.timer.Stop()
	}
	rl.pending = false
}

// stopRelays cancels the member's waiting relays (the user left).
func (m *member) stopRelays() {
	m.state.stop()
	m.viewport.stop()
}

// publishRelay publishes a relayed update unless the user has left, and returns the event
// (nil when none was published); the room's delivery remembers it, stamping the relay time
// the rate counts from.
func (c *Conn) publishRelay(kind Kind, v []byte, setAt time.Time) *Event {
	r := c.r
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.users[c.m.user.UserID] != c.m {
		return nil
	}
	if kind == KindViewport && !r.holdsSpotlight(c.m.user.UserID) {
		return nil // the spotlight went off while the viewport waited
	}
	e := &Event{Kind: kind, User: User{UserID: c.m.user.UserID}, Wire: v, At: setAt.UnixMicro()}
	r.hub.opts.Bus.Publish(r.session, e)
	return e
}

// lastRelayed is the user's last relayed update of kind, from any node.
func (r *room) lastRelayed(userID string, kind Kind) relayed {
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	l := r.latest[userID]
	switch {
	case l == nil:
		return relayed{}
	case kind == KindViewport:
		return l.viewportRelay
	default:
		return l.stateRelay
	}
}

// bucket is a token bucket of rate tokens per second with burst tokens at most.
type bucket struct {
	tokens float64
	last   time.Time
}

// take takes a token if there is one.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
