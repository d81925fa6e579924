package presence_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// handSink records the hand events a connection is given.
type handSink struct {
	mu  sync.Mutex
	got []presence.Event
}

func (s *handSink) Deliver(e *presence.Event) {
	if e.Kind == presence.KindHand {
		s.mu.Lock()
		s.got = append(s.got, *e)
		s.mu.Unlock()
	}
}
func (s *handSink) CloseWith(int, string) {}

// handOf is mia's hand in a fresh snapshot of the session on h (zero: lowered).
func handOf(t *testing.T, h *presence.Hub, class, s uuid.UUID) time.Time {
	t.Helper()
	var at time.Time
	c, err := h.Join(class, s, presence.User{UserID: "viewer"}, &handSink{}, func(us []presence.User) {
		for _, u := range us {
			if u.UserID == "mia" && u.Tutoring != nil {
				at = u.Tutoring.HandAt
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c.LeaveNow()
	return at
}

// Hand changes from several nodes are last-writer-wins by their time, lowering winning a
// tie: every node ends with the same hand whatever order they arrive in, and an older
// change is not delivered.
func TestHandLastWriterWins(t *testing.T) {
	t.Parallel()
	ms := func(n int64) int64 { return time.UnixMilli(1_764_525_731_000 + n).UnixMicro() }
	raise := func(at int64) *presence.Event {
		return &presence.Event{Kind: presence.KindHand, User: presence.User{UserID: "mia"}, Code: 1, At: at}
	}
	lower := func(at int64) *presence.Event {
		return &presence.Event{Kind: presence.KindHand, User: presence.User{UserID: "mia"}, Code: 0, At: at}
	}
	cases := []struct {
		name      string
		order     []*presence.Event
		raisedAt  int64 // 0: lowered
		delivered int
	}{
		{"in order", []*presence.Event{raise(ms(1)), lower(ms(2))}, 0, 2},
		{"lower before the raise it follows", []*presence.Event{lower(ms(2)), raise(ms(1))}, 0, 1},
		{"raise after an older lower", []*presence.Event{raise(ms(3)), lower(ms(2))}, ms(3), 1},
		{"tie, raise first", []*presence.Event{raise(ms(4)), lower(ms(4))}, 0, 2},
		{"tie, lower first", []*presence.Event{lower(ms(4)), raise(ms(4))}, 0, 1},
	}
	for _, tc := range cases {
		bus := presence.NewLocalBus()
		h := presence.NewHub(presence.Options{Bus: bus})
		class, s := uuid.New(), uuid.New()
		var k handSink
		c, err := h.Join(class, s, presence.User{UserID: "tina", Role: presence.RoleTutor}, &k, func([]presence.User) {})
		if err != nil {
			t.Fatal(err)
		}
		mia, err := h.Join(class, s, presence.User{UserID: "mia", Role: presence.RoleStudent}, &handSink{}, func([]presence.User) {})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tc.order {
			bus.Publish(s, e)
		}
		got := handOf(t, h, class, s)
		want := time.Time{}
		if tc.raisedAt != 0 {
			want = time.UnixMicro(tc.raisedAt).UTC()
		}
		if !got.Equal(want) || len(k.got) != tc.delivered {
			t.Errorf("%s: hand raised at %v after %d deliveries, want %v after %d", tc.name, got, len(k.got), want, tc.delivered)
		}
		c.LeaveNow()
		mia.LeaveNow()
	}
}

// A tutor lowering a hand raised on a node whose clock is ahead stamps the lowering after
// the raise, so that it wins everywhere.
func TestHandChangeFollowsTheOneItReplaces(t *testing.T) {
	t.Parallel()
	bus := presence.NewLocalBus()
	h := presence.NewHub(presence.Options{Bus: bus})
	class, s := uuid.New(), uuid.New()
	var k handSink
	tina, err := h.Join(class, s, presence.User{UserID: "tina", Role: presence.RoleTutor}, &k, func([]presence.User) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Join(class, s, presence.User{UserID: "mia", Role: presence.RoleStudent}, &handSink{}, func([]presence.User) {}); err != nil {
		t.Fatal(err)
	}
	ahead := time.Now().Add(time.Minute).Truncate(time.Millisecond).UnixMicro()
	bus.Publish(s, &presence.Event{Kind: presence.KindHand, User: presence.User{UserID: "mia"}, Code: 1, At: ahead})
	if r := tina.Hand(false, "mia"); r != presence.Done {
		t.Fatalf("lowering: %v", r)
	}
	if at := handOf(t, h, class, s); !at.IsZero() {
		t.Fatalf("mia's hand still raised at %v", at)
	}
	if len(k.got) != 2 || k.got[1].At <= ahead {
		t.Fatalf("hand events %+v, want the lowering after %d", k.got, ahead)
	}
}
