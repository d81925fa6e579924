package presence

import "time"

// Tutoring interactions: raised hands, reactions and the spotlight. Presence decides who may
// do what (roles) and how often; the transport tells the client (an error frame for a
// refusal, never a close). Hands and the spotlight are session state: every node that has
// the session remembers them from the bus's events (room.remember), a node opening the
// session asks the others (Syncer), and they go with their user's leave.

// Roles.
const (
	RoleTutor   = "tutor"
	RoleStudent = "student"
)

// Result says what became of a tutoring action.
type Result uint8

// Results.
const (
	Done         Result = iota + 1 // published (or coalesced, to be published)
	Unchanged                      // nothing to do: the hand or spotlight already was so
	Dropped                        // over the rate; not published (the transport tells the sender)
	DroppedAgain                   // over the rate, and the sender was told of a drop less than a second ago
	Forbidden                      // the user's role may not do this
)

// reactionRate and reactionBurst bound one user's reactions: at most 3 per second.
const (
	reactionRate  = 3
	reactionBurst = 3
)

// toggleRate and toggleBurst bound one user's hand and spotlight changes together: each
// one is a broadcast to every connection of the session and a message to every node, so a
// user toggling in a loop would fill the others' outboxes. The burst lets a tutor lower a
// few hands at once.
const (
	toggleRate  = 5
	toggleBurst = 10
)

// Hand raises or lowers a hand: target is the user whose hand it is ("" or the caller for
// their own). A student may raise and lower their own hand; a tutor may lower anyone's.
// Raising a raised hand keeps its place in the queue (Unchanged). A change over the
// caller's hand and spotlight rate is Dropped (or DroppedAgain).
func (c *Conn) Hand(raised bool, target string) Result {
	self := c.m.user
	if target == "" {
		target = self.UserID
	}
	switch {
	case raised && (target != self.UserID || self.Role != RoleStudent):
		return Forbidden // only students raise hands, and only their own
	case !raised && target != self.UserID && self.Role != RoleTutor:
		return Forbidden
	}
	r := c.r
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.gone {
		return Unchanged
	}
	at, last := r.handAt(target)
	if (!at.IsZero()) == raised {
		return Unchanged
	}
	if res := c.m.takeToggle(r.hub.opts.Now()); res != Done {
		return res
	}
	// Hand changes are last-writer-wins by time everywhere (room.remember): this one is
	// after the change it replaces even when that one's node has a clock ahead of ours.
	now := max(r.hub.opts.Now().Truncate(time.Millisecond).UnixMicro(), last+1000)
	r.hub.opts.Bus.Publish(r.session, &Event{Kind: KindHand, User: User{UserID: target}, Code: flag(raised), At: now})
	return Done
}

// React relays a reaction (the transport has checked the emoji); more than 3 per second
// of one user are dropped (silently: the AsyncAPI document says so).
func (c *Conn) React(emoji string) Result {
	m := c.m
	m.rl.Lock()
	ok := m.reactions.take(c.r.hub.opts.Now(), reactionRate, reactionBurst)
	m.rl.Unlock()
	if !ok {
		return Dropped
	}
	r := c.r
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.gone {
		return Unchanged
	}
	r.hub.opts.Bus.Publish(r.session, &Event{Kind: KindReaction, User: User{UserID: m.user.UserID}, Reason: emoji})
	return Done
}

// Spotlight turns the caller's spotlight on or off; tutors only. Turning it on takes it
// from another tutor who held it. A change over the caller's hand and spotlight rate is
// Dropped (or DroppedAgain).
func (c *Conn) Spotlight(on bool) Result {
	if c.m.user.Role != RoleTutor {
		return Forbidden
	}
	r := c.r
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.gone || r.holdsSpotlight(c.m.user.UserID) == on {
		return Unchanged
	}
	if res := c.m.takeToggle(r.hub.opts.Now()); res != Done {
		return res
	}
	r.hub.opts.Bus.Publish(r.session, &Event{Kind: KindSpotlight, User: User{UserID: c.m.user.UserID}, Code: flag(on)})
	return Done
}

// Viewport relays the spotlight holder's viewport, at most 10 per second coalesced (latest
// wins); wire is the transport's encoding. Tutors only; a tutor not holding the spotlight
// is not relayed (Unchanged).
func (c *Conn) Viewport(wire []byte) Result {
	if c.m.user.Role != RoleTutor {
		return Forbidden
	}
	if !c.r.holdsSpotlight(c.m.user.UserID) {
		return Unchanged
	}
	c.offer(&c.m.viewport, c.r.hub.opts.ViewportInterval, wire)
	return Done
}

// takeToggle takes a token of the user's hand and spotlight bucket: Done, Dropped, or
// DroppedAgain within a second of the last Dropped, so that a flood's refusals do not
// flood the sender in turn. Only changes are counted: a repeated raise or spotlight is
// Unchanged and costs the others nothing.
func (m *member) takeToggle(now time.Time) Result {
	m.rl.Lock()
	defer m.rl.Unlock()
	if m.toggles.take(now, toggleRate, toggleBurst) {
		return Done
	}
	if now.Sub(m.toggleTold) < time.Second {
		return DroppedAgain
	}
	m.toggleTold = now
	return Dropped
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// handAt is when the user's hand was raised (zero: it is not), and the time of the last
// change of it the room applied (Event.At; 0: none).
func (r *room) handAt(userID string) (time.Time, int64) {
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	if l := r.latest[userID]; l != nil {
		return l.handAt, l.handSet
	}
	return time.Time{}, 0
}

// holdsSpotlight says whether the user holds the session's spotlight.
func (r *room) holdsSpotlight(userID string) bool {
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	l := r.latest[userID]
	return l != nil && l.spotlight
}
