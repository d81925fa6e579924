package presence_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// sink records what a connection was given, in order.
type sink struct {
	mu  sync.Mutex
	got []string
}

func (s *sink) add(v string) {
	s.mu.Lock()
	s.got = append(s.got, v)
	s.mu.Unlock()
}

func (s *sink) Deliver(e *presence.Event) {
	switch e.Kind {
	case presence.KindJoin:
		s.add("join " + e.User.UserID)
	case presence.KindLeave:
		s.add("leave " + e.User.UserID)
	case presence.KindCursor:
		s.add("cursor " + e.User.UserID)
	}
}

func (s *sink) CloseWith(code int, _ string) { s.add(fmt.Sprint("close ", code)) }

func (s *sink) snapshot(users []presence.User) {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.UserID
	}
	s.add("snapshot " + strings.Join(ids, ","))
}

func (s *sink) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// directory is an in-memory presence.Directory shared by several hubs ("nodes").
type directory struct {
	mu   sync.Mutex
	rows map[string]map[string]int // user → node → conns
	// duringPresent runs inside Present, as an event from another node may arrive while
	// the snapshot is being read.
	duringPresent func()
}

type nodeDir struct {
	d    *directory
	node string
}

func (n nodeDir) Arrive(_ context.Context, _ uuid.UUID, u presence.User, conns int) bool {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	if n.d.rows[u.UserID] == nil {
		n.d.rows[u.UserID] = map[string]int{}
	}
	before := len(n.d.rows[u.UserID])
	n.d.rows[u.UserID][n.node] = conns
	return before == 0
}

func (n nodeDir) Depart(_ context.Context, _ uuid.UUID, userID string, conns int) bool {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	if conns > 0 {
		n.d.rows[userID][n.node] = conns
		return false
	}
	delete(n.d.rows[userID], n.node)
	return len(n.d.rows[userID]) == 0
}

func (n nodeDir) Present(context.Context, uuid.UUID) ([]presence.User, error) {
	if f := n.d.duringPresent; f != nil {
		f()
	}
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	var out []presence.User
	for id, nodes := range n.d.rows {
		if len(nodes) > 0 {
			out = append(out, presence.User{UserID: id})
		}
	}
	slices.SortFunc(out, func(a, b presence.User) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// twoNodes returns two hubs sharing a bus (each node's subscribers get every event once,
// as with NATS) and a directory.
func twoNodes() (a, b *presence.Hub, d *directory) {
	bus := presence.NewLocalBus()
	d = &directory{rows: map[string]map[string]int{}}
	a = presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "a"}})
	b = presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "b"}})
	return a, b, d
}

func TestUserOnTwoNodesJoinsAndLeavesOnce(t *testing.T) {
	t.Parallel()
	a, b, _ := twoNodes()
	class, s := uuid.New(), uuid.New()
	var tina, sam1, sam2 sink
	a.Join(class, s, presence.User{UserID: "tina"}, &tina, tina.snapshot)
	c1 := a.Join(class, s, presence.User{UserID: "sam"}, &sam1, sam1.snapshot)
	c2 := b.Join(class, s, presence.User{UserID: "sam"}, &sam2, sam2.snapshot)
	c1.Leave()
	c2.Leave()
	c2.Leave() // harmless
	want := []string{"snapshot tina", "join sam", "leave sam"}
	if got := tina.events(); !slices.Equal(got, want) {
		t.Errorf("tina got %q, want %q", got, want)
	}
	if got := sam2.events(); !slices.Equal(got, []string{"snapshot sam,tina"}) {
		t.Errorf("sam's second tab got %q, want only the snapshot", got)
	}
}

// An event arriving while the shared snapshot is read reaches the connection after the
// snapshot, not before and not never.
func TestEventDuringSnapshotComesAfterIt(t *testing.T) {
	t.Parallel()
	a, b, d := twoNodes()
	class, s := uuid.New(), uuid.New()
	var tina, mia sink
	d.duringPresent = func() {
		d.duringPresent = nil
		b.Join(class, s, presence.User{UserID: "mia"}, &mia, mia.snapshot) // on the other node
	}
	a.Join(class, s, presence.User{UserID: "tina"}, &tina, tina.snapshot)
	got := tina.events()
	if len(got) != 2 || !strings.HasPrefix(got[0], "snapshot ") || got[1] != "join mia" {
		t.Errorf("tina got %q, want the snapshot, then join mia", got)
	}
}

func TestCloseUserReachesEveryRoomOfTheClassroom(t *testing.T) {
	t.Parallel()
	a := presence.NewHub(presence.Options{})
	class, s1, s2 := uuid.New(), uuid.New(), uuid.New()
	var m1, m2, other sink
	a.Join(class, s1, presence.User{UserID: "mia"}, &m1, m1.snapshot)
	a.Join(class, s2, presence.User{UserID: "mia"}, &m2, m2.snapshot)
	a.Join(uuid.New(), uuid.New(), presence.User{UserID: "mia"}, &other, other.snapshot)
	a.CloseUser(class, "mia", 4403, "forbidden")
	for name, s := range map[string]*sink{"s1": &m1, "s2": &m2} {
		if got := s.events(); !slices.Contains(got, "close 4403") {
			t.Errorf("%s: %q, want close 4403", name, got)
		}
	}
	if got := other.events(); slices.Contains(got, "close 4403") {
		t.Errorf("another classroom's connection was closed: %q", got)
	}
}

// After the others purged this node (and published its users' leave), Reassert records its
// connections again and publishes a join for each user no other node has.
func TestReassertRejoinsPurgedUsers(t *testing.T) {
	t.Parallel()
	a, b, d := twoNodes()
	class, s := uuid.New(), uuid.New()
	var tina, sam sink
	b.Join(class, s, presence.User{UserID: "tina"}, &tina, tina.snapshot)
	a.Join(class, s, presence.User{UserID: "sam"}, &sam, sam.snapshot)
	d.mu.Lock()
	delete(d.rows["sam"], "a") // purged by b, which published the leave
	d.mu.Unlock()
	b.PublishLeave(s, "sam")
	a.Reassert(context.Background())
	want := []string{"snapshot tina", "join sam", "leave sam", "join sam"}
	if got := tina.events(); !slices.Equal(got, want) {
		t.Errorf("tina got %q, want %q", got, want)
	}
	a.Reassert(context.Background()) // nothing purged: nothing published
	if got := tina.events(); len(got) != len(want) {
		t.Errorf("a second Reassert published %q", got[len(want):])
	}
}

// A user over the drop limit gets CursorRateClosed and nothing is closed until the transport
// says how: CloseUser then reaches that user's connections on every node, and no one else's.
func TestRateClosedLeavesTheCloseToTheTransport(t *testing.T) {
	t.Parallel()
	bus := presence.NewLocalBus()
	d := &directory{rows: map[string]map[string]int{}}
	now := time.Unix(1_700_000_000, 0)
	opts := presence.Options{Bus: bus, Directory: nodeDir{d, "a"}, CursorRate: 2, CursorBurst: 2, DropLimit: 2, Now: func() time.Time { return now }}
	a := presence.NewHub(opts)
	opts.Directory = nodeDir{d, "b"}
	b := presence.NewHub(opts)
	class, s := uuid.New(), uuid.New()
	var mia1, mia2, tina sink
	c := a.Join(class, s, presence.User{UserID: "mia"}, &mia1, mia1.snapshot)
	b.Join(class, s, presence.User{UserID: "mia"}, &mia2, mia2.snapshot)
	b.Join(class, s, presence.User{UserID: "tina"}, &tina, tina.snapshot)
	var got []presence.CursorResult
	for range 5 {
		got = append(got, c.Cursor(1, 2, []byte("w")))
	}
	want := []presence.CursorResult{presence.CursorSent, presence.CursorSent, presence.CursorDropped, presence.CursorDropped, presence.CursorRateClosed}
	if !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if slices.ContainsFunc(mia2.events(), func(e string) bool { return strings.HasPrefix(e, "close") }) {
		t.Fatal("presence closed a connection by itself")
	}
	c.CloseUser(4429, "rate_limited")
	for name, k := range map[string]*sink{"mia on a": &mia1, "mia on b": &mia2} {
		if ev := k.events(); ev[len(ev)-1] != "close 4429" {
			t.Errorf("%s: %q, want close 4429 last", name, ev)
		}
	}
	if slices.ContainsFunc(tina.events(), func(e string) bool { return strings.HasPrefix(e, "close") }) {
		t.Errorf("tina was closed: %q", tina.events())
	}
}
