package presence_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// syncBus is a LocalBus that answers Sync with canned states; during runs inside Sync, as
// events may arrive while the answers are awaited.
type syncBus struct {
	*presence.LocalBus
	answer []presence.UserState
	during func()
	wanted [][]string
}

func (b *syncBus) Sync(_ context.Context, _ uuid.UUID, want []string) []presence.UserState {
	b.wanted = append(b.wanted, slices.Clone(want))
	if b.during != nil {
		b.during()
	}
	return b.answer
}

func (b *syncBus) OnSync(func(uuid.UUID, []string) []presence.UserState) {}

// TestSyncFillsSnapshotOnce: a node opening a session asks once for the users present
// elsewhere, the answers fill its snapshot, and an event that arrived meanwhile wins over
// an answer.
func TestSyncFillsSnapshotOnce(t *testing.T) {
	t.Parallel()
	class, s := uuid.New(), uuid.New()
	raised := time.Date(2026, 11, 30, 18, 2, 11, 204e6, time.UTC)
	bus := &syncBus{LocalBus: presence.NewLocalBus(), answer: []presence.UserState{
		{UserID: "mia", Cursor: &presence.Point{X: 1, Y: 2}, State: `{"a":1}`, HandAt: raised},
		{UserID: "sam", HandAt: raised.Add(time.Second)},
		{UserID: "tom", Spotlight: true, Viewport: "v"},
	}}
	d := &directory{rows: map[string]map[string]int{"mia": {"b": 1}, "sam": {"b": 1}, "tom": {"b": 1}}}
	h := presence.NewHub(presence.Options{Bus: bus, Directory: nodeDir{d, "a"}})
	// Sam's hand is lowered on node b while node a waits for the answers.
	bus.during = func() {
		bus.Publish(s, &presence.Event{Kind: presence.KindHand, User: presence.User{UserID: "sam"}, Code: 0, At: raised.Add(2 * time.Second).UnixMicro()})
	}
	var got []presence.User
	var k sink
	if _, err := h.Join(class, s, presence.User{UserID: "tina", Role: presence.RoleTutor}, &k, func(u []presence.User) { got = u }); err != nil {
		t.Fatal(err)
	}
	if len(bus.wanted) != 1 || !slices.Equal(bus.wanted[0], []string{"mia", "sam", "tom"}) {
		t.Fatalf("asked for %q, want the users present elsewhere once", bus.wanted)
	}
	byID := map[string]presence.User{}
	for _, u := range got {
		byID[u.UserID] = u
	}
	mia, sam, tom := byID["mia"], byID["sam"], byID["tom"]
	if mia.Cursor == nil || *mia.Cursor != (presence.Point{X: 1, Y: 2}) || mia.State != `{"a":1}` || mia.Tutoring == nil || !mia.Tutoring.HandAt.Equal(raised) {
		t.Errorf("mia in the snapshot: %+v %+v", mia, mia.Tutoring)
	}
	if sam.Tutoring != nil {
		t.Errorf("sam's hand: %+v, want lowered (the event came after the answer was made)", sam.Tutoring)
	}
	if tom.Tutoring == nil || !tom.Tutoring.Spotlight || tom.Tutoring.Viewport != "v" {
		t.Errorf("tom's spotlight: %+v", tom.Tutoring)
	}
	// A second connection of the now open room does not ask again.
	bus.during = nil
	var k2 sink
	if _, err := h.Join(class, s, presence.User{UserID: "tina", Role: presence.RoleTutor}, &k2, k2.snapshot); err != nil {
		t.Fatal(err)
	}
	if len(bus.wanted) != 1 {
		t.Fatalf("asked %d times, want once per opened session", len(bus.wanted))
	}
}

// TestTutoringRoleTable: which tutoring actions each role may take, in the presence layer.
func TestTutoringRoleTable(t *testing.T) {
	t.Parallel()
	h := presence.NewHub(presence.Options{})
	class, s := uuid.New(), uuid.New()
	var kt, ks sink
	tutor := join(t, h, class, s, presence.User{UserID: "tina", Role: presence.RoleTutor}, &kt)
	student := join(t, h, class, s, presence.User{UserID: "mia", Role: presence.RoleStudent}, &ks)
	steps := []struct {
		name string
		do   func() presence.Result
		want presence.Result
	}{
		{"student raises own", func() presence.Result { return student.Hand(true, "") }, presence.Done},
		{"student raises own again", func() presence.Result { return student.Hand(true, "mia") }, presence.Unchanged},
		{"student lowers tutor's", func() presence.Result { return student.Hand(false, "tina") }, presence.Forbidden},
		{"student raises tutor's", func() presence.Result { return student.Hand(true, "tina") }, presence.Forbidden},
		{"tutor raises own", func() presence.Result { return tutor.Hand(true, "") }, presence.Forbidden},
		{"tutor raises student's", func() presence.Result { return tutor.Hand(true, "mia") }, presence.Forbidden},
		{"tutor lowers student's", func() presence.Result { return tutor.Hand(false, "mia") }, presence.Done},
		{"tutor lowers lowered", func() presence.Result { return tutor.Hand(false, "mia") }, presence.Unchanged},
		{"student spotlight", func() presence.Result { return student.Spotlight(true) }, presence.Forbidden},
		{"student viewport", func() presence.Result { return student.Viewport([]byte("v")) }, presence.Forbidden},
		{"tutor viewport, spotlight off", func() presence.Result { return tutor.Viewport([]byte("v")) }, presence.Unchanged},
		{"tutor spotlight on", func() presence.Result { return tutor.Spotlight(true) }, presence.Done},
		{"tutor spotlight on again", func() presence.Result { return tutor.Spotlight(true) }, presence.Unchanged},
		{"tutor viewport", func() presence.Result { return tutor.Viewport([]byte("v")) }, presence.Done},
		{"student reacts", func() presence.Result { return student.React("👍") }, presence.Done},
		{"student reacts 2", func() presence.Result { return student.React("👍") }, presence.Done},
		{"student reacts 3", func() presence.Result { return student.React("👍") }, presence.Done},
		{"student reacts 4 within the second", func() presence.Result { return student.React("👍") }, presence.Dropped},
		{"tutor reacts", func() presence.Result { return tutor.React("❓") }, presence.Done},
		{"tutor spotlight off", func() presence.Result { return tutor.Spotlight(false) }, presence.Done},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Errorf("%s: %v, want %v", st.name, got, st.want)
		}
	}
}
