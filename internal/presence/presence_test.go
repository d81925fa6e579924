package presence_test

import (
	"context"
	"errors"
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

// join joins sink to the session on hub h and fails the test when it is refused.
func join(t *testing.T, h *presence.Hub, class, session uuid.UUID, u presence.User, k *sink) *presence.Conn {
	t.Helper()
	c, err := h.Join(class, session, u, k, k.snapshot)
	if err != nil {
		t.Fatalf("join of %s refused: %v", u.UserID, err)
	}
	return c
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

// Arrive records the count and applies the caps over every node's rows (one session).
func (n nodeDir) Arrive(_ context.Context, _ uuid.UUID, u presence.User, conns int, caps presence.Caps) (bool, error) {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	if n.d.rows[u.UserID] == nil {
		n.d.rows[u.UserID] = map[string]int{}
	}
	user, session := conns, conns
	for id, nodes := range n.d.rows {
		for node, k := range nodes {
			if node == n.node && id == u.UserID {
				continue
			}
			session += k
			if id == u.UserID {
				user += k
			}
		}
	}
	switch {
	case caps.PerUser > 0 && user > caps.PerUser:
		return false, presence.ErrTooManyConnections
	case caps.PerSession > 0 && session > caps.PerSession:
		return false, presence.ErrSessionFull
	}
	before := len(n.d.rows[u.UserID])
	n.d.rows[u.UserID][n.node] = conns
	return before == 0, nil
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
	join(t, a, class, s, presence.User{UserID: "tina"}, &tina)
	c1 := join(t, a, class, s, presence.User{UserID: "sam"}, &sam1)
	c2 := join(t, b, class, s, presence.User{UserID: "sam"}, &sam2)
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
		join(t, b, class, s, presence.User{UserID: "mia"}, &mia) // on the other node
	}
	join(t, a, class, s, presence.User{UserID: "tina"}, &tina)
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
	join(t, a, class, s1, presence.User{UserID: "mia"}, &m1)
	join(t, a, class, s2, presence.User{UserID: "mia"}, &m2)
	join(t, a, uuid.New(), uuid.New(), presence.User{UserID: "mia"}, &other)
	a.Close(presence.Close{ClassroomID: class, UserID: "mia", Code: 4403, Reason: "forbidden"})
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
	join(t, b, class, s, presence.User{UserID: "tina"}, &tina)
	join(t, a, class, s, presence.User{UserID: "sam"}, &sam)
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
	c := join(t, a, class, s, presence.User{UserID: "mia"}, &mia1)
	join(t, b, class, s, presence.User{UserID: "mia"}, &mia2)
	join(t, b, class, s, presence.User{UserID: "tina"}, &tina)
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

// Caps on one node and across two: the connection over a cap is refused with the cap's
// error, and nobody hears of it (no join, no leave), the refused sink included.
func TestCaps(t *testing.T) {
	t.Parallel()
	caps := presence.Caps{PerUser: 2, PerSession: 3}
	bus := presence.NewLocalBus()
	d := &directory{rows: map[string]map[string]int{}}
	single := presence.NewHub(presence.Options{Caps: caps})
	a := presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "a"}, Caps: caps})
	b := presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "b"}, Caps: caps})
	for name, hubs := range map[string][2]*presence.Hub{"one node": {single, single}, "two nodes": {a, b}} {
		class, s := uuid.New(), uuid.New()
		var tina, mia1, mia2, mia3, sam, oscar sink
		join(t, hubs[0], class, s, presence.User{UserID: "tina"}, &tina)
		join(t, hubs[0], class, s, presence.User{UserID: "mia"}, &mia1)
		join(t, hubs[1], class, s, presence.User{UserID: "mia"}, &mia2)
		if _, err := hubs[1].Join(class, s, presence.User{UserID: "mia"}, &mia3, mia3.snapshot); !errors.Is(err, presence.ErrTooManyConnections) {
			t.Errorf("%s: mia's third connection: %v, want ErrTooManyConnections", name, err)
		}
		if _, err := hubs[0].Join(class, s, presence.User{UserID: "sam"}, &sam, sam.snapshot); !errors.Is(err, presence.ErrSessionFull) {
			t.Errorf("%s: a fourth connection to the session: %v, want ErrSessionFull", name, err)
		}
		if got := tina.events(); !slices.Equal(got, []string{"snapshot tina", "join mia"}) {
			t.Errorf("%s: tina got %q, want only mia's one join", name, got)
		}
		if got := mia3.events(); len(got) != 0 {
			t.Errorf("%s: the refused connection got %q", name, got)
		}
		if name == "one node" { // (the test directory holds one session)
			join(t, hubs[1], class, uuid.New(), presence.User{UserID: "sam"}, &oscar).Leave() // another session has room
		}
	}
}

// Closing a whole session closes every connection to it on every node and refuses joins to
// it for a while with the close's code and reason; other sessions are untouched.
func TestCloseSession(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	bus := presence.NewLocalBus()
	d := &directory{rows: map[string]map[string]int{}}
	a := presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "a"}, Now: clock})
	b := presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "b"}, Now: clock})
	class, s, other := uuid.New(), uuid.New(), uuid.New()
	var tina, mia, sam, late sink
	join(t, a, class, s, presence.User{UserID: "tina"}, &tina)
	join(t, b, class, s, presence.User{UserID: "mia"}, &mia)
	join(t, a, class, other, presence.User{UserID: "sam"}, &sam)
	end := presence.Close{ClassroomID: class, SessionID: s, Code: 4403, Reason: "session_ended"}
	a.CloseLocal(end) // as a Controller delivers it to each node
	b.CloseLocal(end)
	for name, k := range map[string]*sink{"tina on a": &tina, "mia on b": &mia} {
		if ev := k.events(); ev[len(ev)-1] != "close 4403" {
			t.Errorf("%s: %q, want close 4403 last", name, ev)
		}
	}
	if slices.Contains(sam.events(), "close 4403") {
		t.Error("a connection to another session was closed")
	}
	var ended *presence.EndedError
	if _, err := b.Join(class, s, presence.User{UserID: "late"}, &late, late.snapshot); !errors.As(err, &ended) || ended.Code != 4403 || ended.Reason != "session_ended" {
		t.Fatalf("join after the end: %v, want EndedError 4403 session_ended", err)
	}
	mu.Lock()
	now = now.Add(3 * time.Minute)
	mu.Unlock()
	join(t, b, class, s, presence.User{UserID: "late"}, &late) // the transport's own check refuses by then
}

// Hand and spotlight changes share a bucket of 5 per second, burst 10; a refusal is
// Dropped once per second, DroppedAgain in between; repeats that change nothing are free.
func TestToggleRate(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h := presence.NewHub(presence.Options{Now: clock})
	class, s := uuid.New(), uuid.New()
	var mia, tina sink
	m := join(t, h, class, s, presence.User{UserID: "mia", Role: presence.RoleStudent}, &mia)
	tu := join(t, h, class, s, presence.User{UserID: "tina", Role: presence.RoleTutor}, &tina)
	var got []presence.Result
	for i := range 13 {
		got = append(got, m.Hand(i%2 == 0, ""))
	}
	want := []presence.Result{presence.Done, presence.Done, presence.Done, presence.Done, presence.Done,
		presence.Done, presence.Done, presence.Done, presence.Done, presence.Done,
		presence.Dropped, presence.Unchanged, presence.DroppedAgain}
	if !slices.Equal(got, want) {
		t.Fatalf("13 toggles: %v, want %v", got, want)
	}
	if r := m.Hand(true, ""); r != presence.DroppedAgain {
		t.Fatalf("another raise within the second: %v, want DroppedAgain", r)
	}
	advance(time.Second)
	got = got[:0]
	for i := range 6 {
		got = append(got, m.Hand(i%2 == 0, ""))
	}
	want = []presence.Result{presence.Done, presence.Done, presence.Done, presence.Done, presence.Done, presence.Dropped}
	if !slices.Equal(got, want) {
		t.Fatalf("after a second: %v, want %v", got, want)
	}
	// The tutor's bucket is theirs: lowering mia's hand and the spotlight are not refused.
	if r := tu.Hand(false, "mia"); r != presence.Unchanged && r != presence.Done {
		t.Fatalf("tutor lowering mia's hand: %v", r)
	}
	if r := tu.Spotlight(true); r != presence.Done {
		t.Fatalf("tutor's spotlight: %v", r)
	}
}

// Reassert skips a user within their leave grace (no connection left here): no join for
// them, and so no join and leave pair when the grace runs out.
func TestReassertSkipsUsersInGrace(t *testing.T) {
	t.Parallel()
	bus := presence.NewLocalBus()
	d := &directory{rows: map[string]map[string]int{}}
	a := presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "a"}, LeaveGrace: time.Minute})
	b := presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "b"}, LeaveGrace: time.Minute})
	class, s := uuid.New(), uuid.New()
	var tina, sam, mia sink
	join(t, b, class, s, presence.User{UserID: "tina"}, &tina)
	c := join(t, a, class, s, presence.User{UserID: "sam"}, &sam)
	join(t, a, class, s, presence.User{UserID: "mia"}, &mia)
	c.Leave() // sam's grace starts on a
	d.mu.Lock()
	delete(d.rows["sam"], "a") // a purged by b, which published the leaves
	delete(d.rows["mia"], "a")
	d.mu.Unlock()
	b.PublishLeave(s, "sam")
	b.PublishLeave(s, "mia")
	a.Reassert(context.Background())
	want := []string{"snapshot tina", "join sam", "join mia", "leave sam", "leave mia", "join mia"}
	if got := tina.events(); !slices.Equal(got, want) {
		t.Errorf("tina got %q, want %q (no join of sam, who is within his grace)", got, want)
	}
}
