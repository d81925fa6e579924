package presence_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// syncNet is an in-memory presence.Syncer shared by several hubs over one LocalBus: a node's
// Sync gets the answers of every other node's OnSync.
type syncNet struct {
	*presence.LocalBus
	mu   sync.Mutex
	fns  map[int]func(uuid.UUID, []string) []presence.UserState
	want [][]string // every Sync's want, in order
	// duringSync runs inside Sync after the answers were taken and before they are
	// returned, as events may arrive while the answers are on their way.
	duringSync func()
}

type syncNode struct {
	*syncNet
	id int
}

func (n syncNode) OnSync(fn func(uuid.UUID, []string) []presence.UserState) {
	n.mu.Lock()
	n.fns[n.id] = fn
	n.mu.Unlock()
}

func (n syncNode) Sync(_ context.Context, s uuid.UUID, want []string) []presence.UserState {
	n.mu.Lock()
	n.want = append(n.want, slices.Clone(want))
	var fns []func(uuid.UUID, []string) []presence.UserState
	for id, fn := range n.fns {
		if id != n.id {
			fns = append(fns, fn)
		}
	}
	during := n.duringSync
	n.duringSync = nil
	n.mu.Unlock()
	var out []presence.UserState
	for _, fn := range fns {
		out = append(out, fn(s, want)...)
	}
	if during != nil {
		during()
	}
	return out
}

// syncedNodes returns two hubs a and b that sync through net, with a shared directory.
func syncedNodes(t *testing.T) (a, b *presence.Hub, net *syncNet) {
	t.Helper()
	net = &syncNet{LocalBus: presence.NewLocalBus(), fns: map[int]func(uuid.UUID, []string) []presence.UserState{}}
	d := &directory{rows: map[string]map[string]int{}}
	a = presence.NewHub(presence.Options{Bus: syncNode{net, 1}, Directory: nodeDir{d, "a"}, LeaveGrace: time.Minute})
	b = presence.NewHub(presence.Options{Bus: syncNode{net, 2}, Directory: nodeDir{d, "b"}, LeaveGrace: time.Minute})
	return a, b, net
}

// snapshotOf joins u on h and returns the snapshot it got.
func snapshotOf(t *testing.T, h *presence.Hub, class, s uuid.UUID, u presence.User) (*presence.Conn, []presence.User) {
	t.Helper()
	var got []presence.User
	c, err := h.Join(class, s, u, &sink{}, func(us []presence.User) { got = us })
	if err != nil {
		t.Fatal(err)
	}
	return c, got
}

func tutoringOf(users []presence.User, id string) *presence.Tutoring {
	for _, u := range users {
		if u.UserID == id {
			return u.Tutoring
		}
	}
	return nil
}

// A student alone in the session who reconnects to a node that has nobody there, within
// their leave grace on the other node, finds their own raised hand and state in the
// snapshot: the node asks for the joining user too.
func TestSyncAsksForTheJoiningUser(t *testing.T) {
	t.Parallel()
	a, b, net := syncedNodes(t)
	class, s := uuid.New(), uuid.New()
	mia := presence.User{UserID: "mia", Role: presence.RoleStudent}
	onB, _ := snapshotOf(t, b, class, s, mia)
	if r := onB.Hand(true, ""); r != presence.Done {
		t.Fatalf("raise: %v", r)
	}
	onB.State([]byte(`{"tool":"pen"}`))
	onB.Leave() // within the grace on b
	onA, users := snapshotOf(t, a, class, s, mia)
	defer onA.LeaveNow()
	if got := net.want; !slices.EqualFunc(got, [][]string{{"mia"}}, slices.Equal) {
		t.Errorf("syncs asked for %q, want [[mia]]", got)
	}
	if len(users) != 1 || users[0].State != `{"tool":"pen"}` || tutoringOf(users, "mia") == nil || tutoringOf(users, "mia").HandAt.IsZero() {
		t.Fatalf("mia's snapshot on a: %+v, want her state and raised hand", users)
	}
	if r := onA.Hand(true, ""); r != presence.Unchanged {
		t.Errorf("raising the raised hand again on a: %v, want Unchanged", r)
	}
}

// A leave that arrives while the answers to a sync are on their way wins over them: the
// departed user's raised hand does not come back, and they can raise it again later.
func TestLeaveDuringSyncIsNotUndone(t *testing.T) {
	t.Parallel()
	a, b, net := syncedNodes(t)
	class, s := uuid.New(), uuid.New()
	mia := presence.User{UserID: "mia", Role: presence.RoleStudent}
	onB, _ := snapshotOf(t, b, class, s, mia)
	if r := onB.Hand(true, ""); r != presence.Done {
		t.Fatalf("raise: %v", r)
	}
	net.duringSync = onB.LeaveNow // the answer says raised; the leave arrives before it
	tina, users := snapshotOf(t, a, class, s, presence.User{UserID: "tina", Role: presence.RoleTutor})
	defer tina.LeaveNow()
	if tu := tutoringOf(users, "mia"); tu != nil {
		t.Errorf("tina's snapshot has mia's tutoring %+v after her leave", tu)
	}
	again, users := snapshotOf(t, a, class, s, mia)
	defer again.LeaveNow()
	if tu := tutoringOf(users, "mia"); tu != nil {
		t.Errorf("mia's new snapshot has her old tutoring %+v", tu)
	}
	if r := again.Hand(true, ""); r != presence.Done {
		t.Errorf("mia raising her hand after coming back: %v, want Done", r)
	}
}
