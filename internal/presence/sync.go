package presence

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Syncer is a Bus that can ask the other nodes for the session state they hold. A node that
// opens a session (its first local connection) has seen none of the events that set the
// cursors, states, hands and spotlight of users connected elsewhere; it asks once, and the
// bus's events keep it current from then on.
type Syncer interface {
	// Sync asks every other node that has the session for the state of the users in want
	// (the joining user included when they are also on another node, or within a leave
	// grace there) and returns the answers, waiting until every user in want is covered
	// by one or a bounded time has passed.
	Sync(ctx context.Context, session uuid.UUID, want []string) []UserState
	// OnSync registers fn to answer other nodes' requests: the state of the users in want
	// (every user when want is empty) this node has connections (or a leave grace) for,
	// nil when it has none.
	OnSync(fn func(session uuid.UUID, want []string) []UserState)
}

// UserState is one user's session state as a node holds it, for another node's snapshot.
type UserState struct {
	UserID    string    `json:"u"`
	Cursor    *Point    `json:"c,omitempty"`
	State     string    `json:"s,omitempty"`
	HandAt    time.Time `json:"h,omitzero"`
	Spotlight bool      `json:"l,omitempty"`
	Viewport  string    `json:"v,omitempty"`
}

// syncLocked fills the room's latest entries of users present on other nodes from those
// nodes, once per room; r.mu is held. Holding it across the wait (bounded by the bus) only
// delays other joins to this room, which is new on this node: their snapshots need the
// answers too. self is the joining user when they are also on another node (first here,
// not in the cluster): their hand, state and cursor are there, perhaps within a leave grace.
func (r *room) syncLocked(ctx context.Context, present []User, self string) {
	s, ok := r.hub.opts.Bus.(Syncer)
	if !ok || r.synced {
		return
	}
	r.synced = true
	var want []string
	for _, u := range present {
		if r.users[u.UserID] == nil || u.UserID == self {
			want = append(want, u.UserID)
		}
	}
	if self != "" && !slices.Contains(want, self) {
		want = append(want, self)
	}
	if len(want) > 0 {
		r.absorb(s.Sync(ctx, r.session, want))
	}
	r.latestMu.Lock()
	r.left = nil // events are newer than any answer from here on
	r.latestMu.Unlock()
}

// absorb takes other nodes' answers for what the room has not seen an event of: an event
// received since the room opened is newer than any answer, and a user whose leave it
// received since then is gone whatever an answer says.
func (r *room) absorb(states []UserState) {
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	for _, st := range states {
		if r.left[st.UserID] {
			continue
		}
		l := r.latestLocked(st.UserID)
		if st.Cursor != nil && l.seen&seenCursor == 0 {
			l.cursor, l.hasCursor = *st.Cursor, true
		}
		if st.State != "" && l.seen&seenState == 0 {
			l.state = st.State
		}
		if !st.HandAt.IsZero() && l.seen&seenHand == 0 {
			l.handAt, l.handSet = st.HandAt, st.HandAt.UnixMicro()
		}
		if st.Spotlight && !r.spotSeen {
			l.spotlight, l.viewport = true, st.Viewport
		}
	}
}

// localState answers another node's Sync: the state of the users in want (all when it is
// empty) this node has a member for (connected, or within their leave grace).
func (h *Hub) localState(session uuid.UUID, want []string) []UserState {
	h.mu.Lock()
	r := h.rooms[session]
	h.mu.Unlock()
	if r == nil {
		return nil
	}
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	ids := want
	if len(ids) == 0 {
		ids = make([]string, 0, len(r.here))
		for id := range r.here {
			ids = append(ids, id)
		}
	}
	out := make([]UserState, 0, min(len(ids), len(r.here)))
	for _, id := range ids {
		if !r.here[id] {
			continue
		}
		st := UserState{UserID: id}
		if l := r.latest[id]; l != nil {
			if l.hasCursor {
				st.Cursor = ptr(l.cursor)
			}
			st.State, st.HandAt, st.Spotlight = l.state, l.handAt, l.spotlight
			if l.spotlight {
				st.Viewport = l.viewport
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b UserState) int { return strings.Compare(a.UserID, b.UserID) })
	return slices.CompactFunc(out, func(a, b UserState) bool { return a.UserID == b.UserID })
}

// setHere records whether the room has a member for the user.
func (r *room) setHere(userID string, here bool) {
	r.latestMu.Lock()
	defer r.latestMu.Unlock()
	if here {
		r.here[userID] = true
	} else {
		delete(r.here, userID)
	}
}
