// Package presence tracks who is connected to each classroom session and fans session
// events (join, leave, cursor, close) out to the session's connections, on one node or,
// through a Bus and a Directory, across the nodes of a cluster.
//
// It knows no transport. A connection is a Sink; what presence carries for the transport
// is opaque to it: a cursor event's Wire bytes (the encoding the sender's transport made
// once for every receiver) and the code and reason of a close event, which the transport
// chooses (Conn.CloseUser, Hub.Close) and presence only routes to the connections it
// names. Presence decides who is over the cursor rate or the connection caps and which
// sessions have ended; the transport decides how to tell the client.
package presence

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

// User is one present user as clients see it.
type User struct {
	UserID string
	Name   string
	Role   string // "tutor" or "student"
	// Cursor and State are the user's latest cursor position and presence state, set in
	// snapshots only (nil while there is none).
	Cursor *Point
	State  string
	// Tutoring is the user's raised hand and spotlight, set in snapshots only (nil while
	// neither). A pointer: User is part of every Event, cursors' included.
	Tutoring *Tutoring
}

// Tutoring is a user's tutoring state in a snapshot.
type Tutoring struct {
	HandAt    time.Time // when the hand was raised; zero: not raised
	Spotlight bool      // the user holds the spotlight
	Viewport  string    // the transport's encoding of their latest spotlight viewport ("": none)
}

// Point is a cursor position.
type Point struct{ X, Y float64 }

// Kind is the kind of a session event.
type Kind uint8

// Event kinds.
const (
	KindJoin      Kind = iota + 1 // a user's first connection arrived
	KindLeave                     // a user's last connection went
	KindCursor                    // a user moved their cursor
	KindClose                     // close every connection of a user (membership removed)
	KindState                     // a user set their presence state (Wire: the state object, opaque)
	KindHand                      // a user's hand was raised or lowered (Code 1 or 0, At)
	KindReaction                  // a user reacted (Reason: the emoji)
	KindSpotlight                 // a tutor turned the spotlight on or off (Code 1 or 0)
	KindViewport                  // the spotlight's viewport moved (Wire: the transport's encoding, opaque)
)

// Event is one session event. Events are shared by every receiver and must not be changed
// after Publish.
type Event struct {
	Kind Kind
	// User is the user the event is about; only UserID is set except on KindJoin.
	User User
	// X and Y are a cursor position (KindCursor).
	X, Y float64
	// Wire is the transport's encoding of a cursor event, made once by the sender and
	// shared by every receiver. Presence treats it as opaque.
	Wire []byte
	// Code and Reason say how to close (KindClose); Code is also the on/off flag of
	// KindHand and KindSpotlight, and Reason a reaction's emoji.
	Code   int
	Reason string
	// At is when a hand was raised or lowered (KindHand), or a state or viewport was set
	// (KindState, KindViewport: the newest wins), stamped by the node it happened on, in
	// Unix microseconds (an int64 rather than a time.Time keeps every event, cursors'
	// included, in a smaller allocation size class).
	At int64
	// Trace is the span a join or leave happened in, for a bus to carry to other nodes;
	// cursor events never carry one (no span per frame).
	Trace trace.SpanContext
}

// Time is At as a time.
func (e *Event) Time() time.Time { return time.UnixMicro(e.At).UTC() }

// Bus carries a session's events to every subscriber of that session: in-process today,
// across instances when scaled out. Deliver functions must not block.
type Bus interface {
	Subscribe(session uuid.UUID, deliver func(*Event)) (unsubscribe func())
	Publish(session uuid.UUID, e *Event)
}

// Sink is one connection as presence sees it. Deliver queues an event and must not block;
// CloseWith asks the connection to close itself with a close code, asynchronously.
type Sink interface {
	Deliver(e *Event)
	CloseWith(code int, reason string)
}

// Directory is presence shared by the nodes of a cluster. Nodes record, per session, the
// users they have connections for; Arrive and Depart say whether this node saw the user's
// first arrival or last departure across the cluster, so that join and leave are published
// once per user, not once per node. Implementations log their own errors and, when the
// shared state cannot be reached, answer as if this node were alone.
type Directory interface {
	// Arrive records that this node has conns connections of u in the session; first is
	// true when no node, this one included, had the user before. When the connection that
	// made conns would take the user or the session over caps across the cluster, nothing
	// is recorded and the error is ErrTooManyConnections or ErrSessionFull; any other
	// trouble is logged and answered as if this node were alone (no error).
	Arrive(ctx context.Context, session uuid.UUID, u User, conns int, caps Caps) (first bool, err error)
	// Depart records that this node has conns (possibly 0) connections of the user left;
	// last is true when conns is 0 and no other node has the user.
	Depart(ctx context.Context, session uuid.UUID, userID string, conns int) (last bool)
	// Present lists the users present in the session on any live node, by user id.
	Present(ctx context.Context, session uuid.UUID) ([]User, error)
}

// Controller carries close requests to every node of a cluster; a Bus that implements it
// is used to reach connections on other nodes (a removed member, an ended session).
type Controller interface {
	// PublishClose hands c to the OnClose functions of every node, this one included.
	PublishClose(c Close) error
	// OnClose registers fn for close requests from any node.
	OnClose(fn func(Close))
}

// Close asks connections to close with a transport's code and reason: those of UserID, or
// of every user when it is empty, in the session SessionID, or in every session of the
// classroom when it is zero. Closing a whole session (no UserID) also refuses new joins to
// it for a while on every node that received it (the session ended: see Hub.Join).
type Close struct {
	ClassroomID uuid.UUID
	SessionID   uuid.UUID
	UserID      string
	Code        int
	Reason      string
}

// Caps bound the connections to one session, across the cluster with a Directory; 0 means
// no bound.
type Caps struct {
	PerUser    int // connections of one user
	PerSession int // connections of all users
}

// Errors of Join when a cap would be exceeded; the connection is refused and nobody is
// told of it (no join, no leave).
var (
	ErrTooManyConnections = errors.New("presence: too many connections of this user to the session")
	ErrSessionFull        = errors.New("presence: too many connections to the session")
)

// EndedError is Join's error for a session closed as a whole (Close with no UserID) in the
// last endedMemory: the code and reason the close carried.
type EndedError struct {
	Code   int
	Reason string
}

func (e *EndedError) Error() string { return "presence: the session was closed: " + e.Reason }

// endedMemory is how long a node refuses joins to a session closed as a whole. The
// transport's own check (the session's status in the database) refuses later ones; this
// covers a connection that passed that check just before the session ended and joins just
// after the close went out.
const endedMemory = 2 * time.Minute

// check reports which cap, if any, a connection making the user's count user and the
// session's count session exceeds.
func (c Caps) check(user, session int) error {
	if c.PerUser > 0 && user > c.PerUser {
		return ErrTooManyConnections
	}
	if c.PerSession > 0 && session > c.PerSession {
		return ErrSessionFull
	}
	return nil
}

// Options configure a Hub.
type Options struct {
	Bus Bus
	// Directory is the presence shared across nodes; nil means this node is alone and
	// presence is what its own connections say.
	Directory Directory
	// CursorRate is the cursor updates per second a user may send to one session, across
	// that user's connections; CursorBurst the bucket size.
	CursorRate  float64
	CursorBurst int
	// DropLimit is how many dropped updates within one second a user may have before
	// Cursor answers CursorRateClosed; default CursorRate.
	DropLimit int
	// Caps bound the connections per user and per session (zero: unbounded).
	Caps Caps
	// StateInterval is the least time between two relayed presence states of one user;
	// updates within it are coalesced, the latest relayed when it has passed. Default 200 ms
	// (5 per second).
	StateInterval time.Duration
	// LeaveGrace is how long a user whose last connection went (Conn.Leave) stays present
	// before their leave is published; a connection of theirs joining within it cancels the
	// leave and nobody is told anything. 0 turns the grace off. Conn.LeaveNow skips it.
	LeaveGrace time.Duration
	// ViewportInterval is the least time between two relayed spotlight viewports of one
	// user, coalesced like states. Default 100 ms (10 per second).
	ViewportInterval time.Duration
	// OnTransition, when set, is called with each join and leave this hub publishes for its
	// own connections (a user's first connection; their last, after the grace), under the
	// room's lock so that one user's calls come in order (attendance). For a hub without a
	// Directory: a Directory sees the same transitions in its own writes.
	OnTransition func(ctx context.Context, session uuid.UUID, u User, joined bool)
	Now          func() time.Time
}

// Hub holds the sessions that have local connections.
type Hub struct {
	opts Options

	mu    sync.Mutex // guards rooms and each room's refs (its lifetime)
	rooms map[uuid.UUID]*room

	// endedMu guards ended, the sessions closed as a whole within endedMemory. It is
	// taken alone or under a room's mu, never the other way round.
	endedMu sync.Mutex
	ended   map[uuid.UUID]ended
}

type ended struct {
	at  time.Time
	err *EndedError
}

// NewHub returns a Hub. A nil Bus means a LocalBus. When the Bus is a Controller the hub
// registers for its close requests.
func NewHub(o Options) *Hub {
	if o.Bus == nil {
		o.Bus = NewLocalBus()
	}
	if o.CursorRate <= 0 {
		o.CursorRate = 20
	}
	if o.CursorBurst <= 0 {
		o.CursorBurst = 20
	}
	if o.DropLimit <= 0 {
		o.DropLimit = int(o.CursorRate)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StateInterval <= 0 {
		o.StateInterval = 200 * time.Millisecond
	}
	if o.ViewportInterval <= 0 {
		o.ViewportInterval = 100 * time.Millisecond
	}
	h := &Hub{opts: o, rooms: map[uuid.UUID]*room{}, ended: map[uuid.UUID]ended{}}
	if ctl, ok := o.Bus.(Controller); ok {
		ctl.OnClose(h.CloseLocal)
	}
	if s, ok := o.Bus.(Syncer); ok {
		s.OnSync(h.localState)
	}
	return h
}

type room struct {
	hub       *Hub
	session   uuid.UUID
	classroom uuid.UUID
	// mu orders the room's joins and leaves (each one's state change, shared-presence
	// write and event are atomic: a user's join and leave are published in the order they
	// happened) and excludes cursor publishing (read side) from them (write side), so that
	// no cursor of a user is delivered after that user's leave. Holding it, rather than the
	// hub's lock, across a Directory round trip keeps other sessions' joins unblocked.
	mu          sync.RWMutex
	users       map[string]*member
	conns       atomic.Pointer[[]*Conn] // copy on write; read without locks by the fan-out
	unsubscribe func()
	refs        int // connections joined or joining, under hub.mu; the room goes at 0

	// latest is every present user's latest cursor and state, local or on another node, as
	// the room's bus subscription saw them (once per event, never per delivery); leave
	// clears a user's. Snapshots read it.
	latestMu sync.Mutex
	latest   map[string]*latest
	// here mirrors the keys of users (under latestMu), for answering other nodes' syncs
	// without waiting for mu, which a join holds across its own sync.
	here map[string]bool
	// spotSeen says a spotlight event arrived since the room opened: the spotlight a sync
	// brings is older than what the room knows.
	spotSeen bool
	// synced says the room asked the other nodes for their users' latest (see Syncer),
	// under mu.
	synced bool
	// left is the users whose leave the room received before its sync was over (under
	// latestMu; nil when there is no sync to come or it is over): the answers may predate
	// the leave and must not bring their state back.
	left map[string]bool
}

// latest is one user's session state as the room last saw it. seen marks the fields set by
// events since the room opened, which a sync from other nodes must not overwrite.
type latest struct {
	cursor    Point
	hasCursor bool
	state     string
	// stateRelay and viewportRelay are the user's last relayed state and viewport, from
	// any node: the relays' rate is per user across the cluster.
	stateRelay    relayed
	viewportRelay relayed
	handAt        time.Time // zero: not raised
	handSet       int64     // Event.At of the hand change applied last (0: none)
	spotlight     bool
	viewport      string
	seen          seen
}

type seen uint8

const (
	seenCursor seen = 1 << iota
	seenState
	seenHand
)

type member struct {
	user  User
	conns int

	rl     sync.Mutex
	tokens float64
	last   time.Time
	drops  []time.Time // ring of the newest DropLimit+1 drop times
	next   int
	filled int

	// state and viewport relay the user's presence state and spotlight viewport, each
	// coalesced to one per interval (see relay).
	state    relay
	viewport relay
	// reactions is the user's reaction bucket, toggles their hand and spotlight changes'
	// (guarded by rl).
	reactions  bucket
	toggles    bucket
	toggleTold time.Time // the last Dropped of toggles

	// grace is the pending leave of a user with no connection left here (under room.mu);
	// graceGen tells a grace timer whether it is still the current one.
	grace    *time.Timer
	graceGen uint64
}

// Conn is one connection's membership in a session.
type Conn struct {
	r    *room
	m    *member
	sink Sink
	gone bool // under r.mu

	// Until the snapshot is queued, events for the connection are held in pending (the
	// snapshot is read from shared state while events already flow).
	live    atomic.Bool
	pmu     sync.Mutex
	pending []*Event
}

func (c *Conn) deliver(e *Event) {
	if !c.live.Load() {
		c.pmu.Lock()
		if !c.live.Load() {
			c.pending = append(c.pending, e)
			c.pmu.Unlock()
			return
		}
		c.pmu.Unlock()
	}
	if e.Kind == KindClose {
		c.sink.CloseWith(e.Code, e.Reason)
		return
	}
	c.sink.Deliver(e)
}

// goLive hands the held events over and lets later ones through directly.
func (c *Conn) goLive() {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for _, e := range c.pending {
		if e.Kind == KindClose {
			c.sink.CloseWith(e.Code, e.Reason)
		} else {
			c.sink.Deliver(e)
		}
	}
	c.pending = nil
	c.live.Store(true)
}

// Join registers a connection. snapshot is called with the users present (the joining user
// included) before any other event can reach sink, so the transport can send it first. A
// user's first connection (across the cluster, with a Directory) publishes KindJoin to the
// others. A connection over a cap (ErrTooManyConnections, ErrSessionFull) or to a session
// closed as a whole (*EndedError) is refused: nothing is recorded or published and sink
// gets nothing.
func (h *Hub) Join(classroomID, session uuid.UUID, u User, sink Sink, snapshot func([]User)) (*Conn, error) {
	return h.JoinContext(context.Background(), classroomID, session, u, sink, snapshot)
}

// JoinContext is Join within ctx's trace: the directory's statements and the join event
// published to other nodes carry its span. ctx's cancellation is ignored.
func (h *Hub) JoinContext(ctx context.Context, classroomID, session uuid.UUID, u User, sink Sink, snapshot func([]User)) (*Conn, error) {
	ctx = context.WithoutCancel(ctx)
	h.mu.Lock()
	r := h.rooms[session]
	if r == nil {
		r = &room{hub: h, session: session, classroom: classroomID, users: map[string]*member{}, latest: map[string]*latest{}, here: map[string]bool{}}
		if _, ok := h.opts.Bus.(Syncer); ok && h.opts.Directory != nil {
			r.left = map[string]bool{}
		}
		r.conns.Store(&[]*Conn{})
		r.unsubscribe = h.opts.Bus.Subscribe(session, r.deliver)
		h.rooms[session] = r
	}
	r.refs++
	h.mu.Unlock()
	r.mu.Lock()
	m := r.users[u.UserID]
	first := m == nil // here; with clusterFirst, in the cluster
	n := 1            // the user's connections here with this one
	if m != nil {
		n = m.conns + 1
	}
	// Checked under r.mu: CloseLocal records the end before it takes r.mu to close the
	// room's connections, so a join either sees the end here or is in the room by then.
	err := h.endedErr(session)
	if err == nil {
		err = h.opts.Caps.check(n, len(*r.conns.Load())+1)
	}
	d := h.opts.Directory
	clusterFirst := true
	if err == nil && d != nil {
		// Arrive records the count on every connection; only the user's first one here
		// can be their first in the cluster.
		clusterFirst, err = d.Arrive(ctx, session, u, n, h.opts.Caps)
	}
	if err != nil {
		r.mu.Unlock()
		h.release(r)
		return nil, err
	}
	dropGraceRef := false
	defer func() {
		if dropGraceRef {
			h.release(r) // after r.mu (deferred below), as everywhere
		}
	}()
	defer r.mu.Unlock()
	if m != nil && m.grace != nil {
		// Back within the grace: no leave, no join. A timer that already fired finds its
		// generation stale and drops its room reference itself.
		m.graceGen++
		dropGraceRef = m.grace.Stop()
		m.grace = nil
	}
	if m == nil {
		now := h.opts.Now()
		m = &member{user: u, tokens: float64(h.opts.CursorBurst), last: now,
			state:     relay{kind: KindState},
			viewport:  relay{kind: KindViewport},
			reactions: bucket{tokens: reactionBurst, last: now},
			toggles:   bucket{tokens: toggleBurst, last: now}}
		r.users[u.UserID] = m
		r.setHere(u.UserID, true)
	}
	m.conns = n
	c := &Conn{r: r, m: m, sink: sink}
	old := *r.conns.Load()
	r.conns.Store(ptr(append(slices.Clip(old), c)))
	// The snapshot is read after c is in the room: what happens from here reaches c (held
	// until goLive), what happened before is in the snapshot.
	users := r.usersLocked()
	if d != nil {
		if shared, err := d.Present(ctx, session); err == nil {
			self := ""
			if first && !clusterFirst {
				self = u.UserID // on another node too, perhaps within a leave grace there
			}
			r.syncLocked(ctx, shared, self)
			users = mergeUsers(shared, users)
		}
	}
	r.withLatest(users)
	snapshot(users)
	c.goLive()
	if first && clusterFirst {
		if f := h.opts.OnTransition; f != nil {
			f(ctx, session, u, true)
		}
		// Delivery never takes r.mu, so publishing under it cannot deadlock.
		h.opts.Bus.Publish(session, &Event{Kind: KindJoin, User: u, Trace: trace.SpanContextFromContext(ctx)})
	}
	return c, nil
}

// release drops a reference to the room; the last one unsubscribes it.
func (h *Hub) release(r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.refs--
	if r.refs == 0 {
		r.unsubscribe()
		delete(h.rooms, r.session)
	}
}

// mergeUsers returns the union of two lists sorted by user id, a's entry winning.
func mergeUsers(a, b []User) []User {
	out := slices.Clone(a)
	for _, u := range b {
		if !slices.ContainsFunc(out, func(o User) bool { return o.UserID == u.UserID }) {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(x, y User) int { return strings.Compare(x.UserID, y.UserID) })
	return out
}

func ptr[T any](v T) *T { return &v }

func (r *room) usersLocked() []User {
	out := make([]User, 0, len(r.users))
	for _, m := range r.users {
		out = append(out, m.user)
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.UserID, b.UserID) })
	return out
}

// Leave unregisters the connection; the user's last connection publishes KindLeave, after
// LeaveGrace unless one of theirs joins within it. Calling it twice is harmless.
func (c *Conn) Leave() { c.leave(false) }

// LeaveNow is Leave without the grace (the user was closed out: kicked, session ended).
func (c *Conn) LeaveNow() { c.leave(true) }

func (c *Conn) leave(now bool) {
	r := c.r
	h := r.hub
	r.mu.Lock()
	if c.gone {
		r.mu.Unlock()
		return
	}
	c.gone = true
	old := *r.conns.Load()
	next := make([]*Conn, 0, len(old))
	for _, o := range old {
		if o != c {
			next = append(next, o)
		}
	}
	r.conns.Store(&next)
	c.m.conns--
	if g := h.opts.LeaveGrace; c.m.conns == 0 && !now && g > 0 {
		// The room reference of this connection passes to the grace timer.
		m := c.m
		m.graceGen++
		gen := m.graceGen
		m.grace = time.AfterFunc(g, func() { r.graceOver(m, gen) })
		r.mu.Unlock()
		return
	}
	last := c.m.conns == 0
	gone := last // from this node
	if last {
		delete(r.users, c.m.user.UserID)
		r.setHere(c.m.user.UserID, false)
	}
	if d := h.opts.Directory; d != nil {
		if !d.Depart(context.Background(), r.session, c.m.user.UserID, c.m.conns) {
			last = false // still present on another node
		}
	}
	if last {
		if f := h.opts.OnTransition; f != nil {
			f(context.Background(), r.session, c.m.user, false)
		}
		h.opts.Bus.Publish(r.session, &Event{Kind: KindLeave, User: User{UserID: c.m.user.UserID}})
	}
	r.mu.Unlock()
	if gone {
		// After r.mu: a waiting relay holds its lock while it takes r.mu (and then sees
		// the user gone).
		c.m.stopRelays()
	}
	h.release(r)
}

// graceOver publishes the leave of a user whose grace ran out with no connection back,
// and drops the room reference the grace held.
func (r *room) graceOver(m *member, gen uint64) {
	h := r.hub
	defer h.release(r)
	r.mu.Lock()
	if m.graceGen != gen || m.conns > 0 || r.users[m.user.UserID] != m {
		r.mu.Unlock()
		return
	}
	m.grace = nil
	delete(r.users, m.user.UserID)
	r.setHere(m.user.UserID, false)
	last := true
	if d := h.opts.Directory; d != nil && !d.Depart(context.Background(), r.session, m.user.UserID, 0) {
		last = false // still present on another node
	}
	if last {
		if f := h.opts.OnTransition; f != nil {
			f(context.Background(), r.session, m.user, false)
		}
		h.opts.Bus.Publish(r.session, &Event{Kind: KindLeave, User: User{UserID: m.user.UserID}})
	}
	r.mu.Unlock()
	m.stopRelays()
}

// CursorResult says what became of a cursor update.
type CursorResult uint8

// Cursor results.
const (
	CursorSent           CursorResult = iota + 1
	CursorDropped                     // over the rate; not broadcast
	CursorRateClosed                  // dropped, and the user went over the drop limit: the transport closes their connections (CloseUser)
	CursorConnectionGone              // the connection has left
)

// withLatest fills in each user's latest cursor and state.
func (r *room) withLatest(users []User) {
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	for i := range users {
		if l := r.latest[users[i].UserID]; l != nil {
			if l.hasCursor {
				users[i].Cursor = ptr(l.cursor)
			}
			users[i].State = l.state
			if !l.handAt.IsZero() || l.spotlight {
				t := &Tutoring{HandAt: l.handAt, Spotlight: l.spotlight}
				if l.spotlight {
					t.Viewport = l.viewport
				}
				users[i].Tutoring = t
			}
		}
	}
}

// remember records an event's change to the user's session state, or forgets the user on
// leave (their cursor, state, hand and spotlight go with them). It reports false for a
// state, viewport or hand change older than the one the room has (made on another node in
// the meantime), which is not delivered: everyone sees a user's changes in the order made.
func (r *room) remember(e *Event) bool {
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	if e.Kind == KindLeave {
		delete(r.latest, e.User.UserID)
		if r.left != nil {
			r.left[e.User.UserID] = true
		}
		return true
	}
	l := r.latestLocked(e.User.UserID)
	switch e.Kind {
	case KindCursor:
		l.cursor, l.hasCursor = Point{e.X, e.Y}, true
		l.seen |= seenCursor
	case KindState:
		if !l.stateRelay.record(e, r.hub.opts.Now()) {
			return false
		}
		l.state = string(e.Wire)
		l.seen |= seenState
	case KindHand:
		// Last writer wins by time, lowering winning a tie, so that every node ends with
		// the same hand whatever order changes from several nodes arrive in.
		if l.handSet != 0 && (e.At < l.handSet || e.At == l.handSet && (e.Code != 0 || l.handAt.IsZero())) {
			return false
		}
		l.handSet = e.At
		l.handAt = time.Time{}
		if e.Code != 0 {
			l.handAt = e.Time()
		}
		l.seen |= seenHand
	case KindSpotlight:
		r.spotSeen = true
		if e.Code != 0 {
			// One spotlight per session: the latest tutor to turn it on holds it.
			for _, o := range r.latest {
				o.spotlight, o.viewport = false, ""
			}
		}
		l.spotlight, l.viewport = e.Code != 0, ""
	case KindViewport:
		if !l.viewportRelay.record(e, r.hub.opts.Now()) {
			return false
		}
		l.viewport = string(e.Wire)
	}
	return true
}

// latestLocked returns the user's entry, made on first use; r.latestMu is held.
func (r *room) latestLocked(userID string) *latest {
	l := r.latest[userID]
	if l == nil {
		l = &latest{}
		r.latest[userID] = l
	}
	return l
}

// State sets the user's presence state (last write wins across their connections) and
// relays it to the others at most once per StateInterval, counted across the cluster: an
// update within the interval waits, replaced by any later one, and the latest is relayed
// when the interval has passed. state is the transport's encoding of the object, opaque to
// presence.
func (c *Conn) State(state []byte) { c.offer(&c.m.state, c.r.hub.opts.StateInterval, state) }

// Cursor rate-limits and publishes a cursor update; wire is the transport's encoding of it.
func (c *Conn) Cursor(x, y float64, wire []byte) CursorResult {
	if res := c.m.take(c.r.hub.opts); res != CursorSent {
		return res
	}
	r := c.r
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.gone {
		return CursorConnectionGone
	}
	r.hub.opts.Bus.Publish(r.session, &Event{Kind: KindCursor, User: User{UserID: c.m.user.UserID}, X: x, Y: y, Wire: wire})
	return CursorSent
}

// take is the user's token bucket and drop window.
func (m *member) take(o Options) CursorResult {
	now := o.Now()
	m.rl.Lock()
	defer m.rl.Unlock()
	m.tokens += now.Sub(m.last).Seconds() * o.CursorRate
	if b := float64(o.CursorBurst); m.tokens > b {
		m.tokens = b
	}
	m.last = now
	if m.tokens >= 1 {
		m.tokens--
		return CursorSent
	}
	// Remember the newest DropLimit+1 drops; when the oldest of them is less than a
	// second old, more than DropLimit were dropped within one second.
	if m.drops == nil {
		// Allocated on the first drop: most users are never throttled, and the ring is
		// most of what a member costs (memory per idle connection, issue 4).
		m.drops = make([]time.Time, o.DropLimit+1)
	}
	k := len(m.drops)
	m.drops[m.next] = now
	m.next = (m.next + 1) % k
	if m.filled < k {
		m.filled++
	}
	if m.filled == k && now.Sub(m.drops[m.next]) < time.Second {
		m.filled = 0
		return CursorRateClosed
	}
	return CursorDropped
}

// CloseUser asks every connection of this connection's user to the session, on every node,
// to close with code and reason (a user over the cursor rate).
func (c *Conn) CloseUser(code int, reason string) {
	c.r.hub.opts.Bus.Publish(c.r.session, &Event{Kind: KindClose, User: User{UserID: c.m.user.UserID}, Code: code, Reason: reason})
}

// deliver is the room's bus subscription: it hands each event to every local connection
// except those of the user the event is about (no echo, and no join/leave about oneself);
// close events go to that user's connections only.
func (r *room) deliver(e *Event) {
	conns := *r.conns.Load()
	switch e.Kind {
	case KindCursor, KindState, KindLeave, KindHand, KindSpotlight, KindViewport:
		if !r.remember(e) {
			return
		}
	}
	if e.Kind == KindClose {
		for _, c := range conns {
			if e.User.UserID == "" || c.m.user.UserID == e.User.UserID {
				c.deliver(e)
			}
		}
		return
	}
	// A hand or spotlight change reaches its user's connections too: a tutor may lower a
	// student's hand, and a user's other tabs show their own hand and spotlight.
	toAll := e.Kind == KindHand || e.Kind == KindSpotlight
	for _, c := range conns {
		if toAll || c.m.user.UserID != e.User.UserID {
			c.deliver(e)
		}
	}
}

// Present returns the users connected to a session now, by user id: across the cluster
// with a Directory, else on this node.
func (h *Hub) Present(ctx context.Context, session uuid.UUID) ([]User, error) {
	if d := h.opts.Directory; d != nil {
		return d.Present(ctx, session)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[session]
	if r == nil {
		return []User{}, nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.usersLocked(), nil
}

// Close closes the connections c names: on every node when the Bus is a Controller, else on
// this one.
func (h *Hub) Close(c Close) {
	if ctl, ok := h.opts.Bus.(Controller); ok {
		if err := ctl.PublishClose(c); err == nil {
			return // the Controller hands it to this node's CloseLocal too
		}
	}
	h.CloseLocal(c)
}

// CloseLocal closes the connections c names on this node; closing a whole session also
// refuses joins to it here for endedMemory.
func (h *Hub) CloseLocal(c Close) {
	if c.UserID == "" && c.SessionID != uuid.Nil {
		h.endedMu.Lock()
		now := h.opts.Now()
		for id, e := range h.ended {
			if now.Sub(e.at) >= endedMemory {
				delete(h.ended, id)
			}
		}
		h.ended[c.SessionID] = ended{at: now, err: &EndedError{Code: c.Code, Reason: c.Reason}}
		h.endedMu.Unlock()
	}
	h.mu.Lock()
	var rooms []*room
	for _, r := range h.rooms {
		if r.classroom == c.ClassroomID && (c.SessionID == uuid.Nil || r.session == c.SessionID) {
			rooms = append(rooms, r)
		}
	}
	h.mu.Unlock()
	e := &Event{Kind: KindClose, User: User{UserID: c.UserID}, Code: c.Code, Reason: c.Reason}
	for _, r := range rooms {
		r.mu.Lock() // see Join: a connection joining now is either refused or in the room
		r.deliver(e)
		r.mu.Unlock()
	}
}

// endedErr is the error for joining a session closed as a whole within endedMemory.
func (h *Hub) endedErr(session uuid.UUID) error {
	h.endedMu.Lock()
	defer h.endedMu.Unlock()
	if e, ok := h.ended[session]; ok && h.opts.Now().Sub(e.at) < endedMemory {
		return e.err
	}
	return nil
}

// Reassert records every local connection in the Directory again and publishes a join for
// each user who is thereby first in the cluster: after the other nodes purged this one
// (and published its users' leave) while its connections stayed open. Users within their
// leave grace have no connection to reassert.
func (h *Hub) Reassert(ctx context.Context) {
	d := h.opts.Directory
	if d == nil {
		return
	}
	h.mu.Lock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		for _, m := range r.users {
			if m.grace != nil {
				continue // no connection left: their leave is due, not a join
			}
			// Caps are not applied: these connections are open already.
			if first, _ := d.Arrive(ctx, r.session, m.user, m.conns, Caps{}); first {
				h.opts.Bus.Publish(r.session, &Event{Kind: KindJoin, User: m.user})
			}
		}
		r.mu.Unlock()
	}
}

// PublishLeave publishes a leave for a user whose presence ended elsewhere: the rows of a
// dead node, purged by this one.
func (h *Hub) PublishLeave(session uuid.UUID, userID string) {
	h.opts.Bus.Publish(session, &Event{Kind: KindLeave, User: User{UserID: userID}})
}

// LocalBus is the in-process Bus: Publish calls every subscriber of the session
// synchronously.
type LocalBus struct {
	mu   sync.RWMutex
	subs map[uuid.UUID][]*localSub
}

type localSub struct{ deliver func(*Event) }

// NewLocalBus returns an empty LocalBus.
func NewLocalBus() *LocalBus { return &LocalBus{subs: map[uuid.UUID][]*localSub{}} }

// Subscribe adds deliver to the session's subscribers.
func (b *LocalBus) Subscribe(session uuid.UUID, deliver func(*Event)) func() {
	s := &localSub{deliver: deliver}
	b.mu.Lock()
	b.subs[session] = append(b.subs[session], s)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		subs := b.subs[session]
		for i, o := range subs {
			if o == s {
				subs = slices.Delete(slices.Clone(subs), i, i+1)
				break
			}
		}
		if len(subs) == 0 {
			delete(b.subs, session)
		} else {
			b.subs[session] = subs
		}
	}
}

// Publish delivers e to the session's subscribers.
func (b *LocalBus) Publish(session uuid.UUID, e *Event) {
	b.mu.RLock()
	subs := b.subs[session]
	b.mu.RUnlock()
	for _, s := range subs {
		s.deliver(e)
	}
}

var _ Bus = (*LocalBus)(nil)
