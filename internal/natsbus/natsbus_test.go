package natsbus

import (
	"bytes"
	"context"
	"encoding/binary"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/m4sh/backend/internal/presence"
)

func TestWireRoundTrip(t *testing.T) {
	t.Parallel()
	node := uuid.New()
	tests := []*presence.Event{
		{Kind: presence.KindJoin, User: presence.User{UserID: "mia", Name: "Mía ✓", Role: "student"}},
		{Kind: presence.KindLeave, User: presence.User{UserID: "mia"}},
		{Kind: presence.KindCursor, User: presence.User{UserID: "mia"}, X: -1.5, Y: 1e300, Wire: []byte(`"user_id":"mia","x":-1.5,"y":1e+300`)},
		{Kind: presence.KindClose, User: presence.User{UserID: "mia"}, Code: 4429, Reason: "rate_limited"},
		{Kind: presence.KindHand, User: presence.User{UserID: "mia"}, Code: 1, At: time.Date(2026, 11, 30, 18, 2, 11, 204000000, time.UTC).UnixMicro()},
		{Kind: presence.KindState, User: presence.User{UserID: "mia"}, Wire: []byte(`{"tool":"pen"}`), At: time.Date(2026, 11, 30, 18, 2, 11, 204123000, time.UTC).UnixMicro()},
		{Kind: presence.KindViewport, User: presence.User{UserID: "tina"}, Wire: []byte(`{"type":"viewport","user_id":"tina","x":0,"y":0,"w":1,"h":1}`), At: 1},
		{Kind: presence.KindReaction, User: presence.User{UserID: "mia"}, Reason: "👏"},
		{Kind: presence.KindSpotlight, User: presence.User{UserID: "tina"}, Code: 1},
	}
	for _, e := range tests {
		gotNode, got, rest, err := decode(encode(node, e))
		if err != nil || gotNode != node || !reflect.DeepEqual(got, e) || len(rest) != 0 {
			t.Errorf("decode(encode(%+v)) = %v, %+v, %v", e, gotNode, got, err)
		}
	}
	for _, e := range []*presence.Event{tests[2], tests[4]} {
		b := encode(node, e)
		end := len(b) - 1
		if e.At != 0 {
			end = len(b) - len(binary.AppendUvarint(nil, uint64(e.At))) // the time is optional
		}
		for i := range end {
			if _, _, _, err := decode(b[:i]); err == nil {
				t.Errorf("decode of %d of %d bytes succeeded", i, len(b))
			}
		}
		for i := end + 1; i < len(b); i++ {
			if _, _, _, err := decode(b[:i]); err == nil {
				t.Errorf("decode of %d of %d bytes (a partial time) succeeded", i, len(b))
			}
		}
	}
}

// TestWireWithoutTime: hand, state and viewport events keep wire version 1 across a rolling
// upgrade. An event without its time (a state event of the previous release) decodes with
// At 0; an event with it is the older format followed by the time, which a node of the
// previous release reads as the event and ignores the bytes after it.
func TestWireWithoutTime(t *testing.T) {
	t.Parallel()
	node := uuid.New()
	for _, e := range []*presence.Event{
		{Kind: presence.KindState, User: presence.User{UserID: "mia"}, Wire: []byte(`{"tool":"pen"}`), At: 1_764_525_731_204_123},
		{Kind: presence.KindHand, User: presence.User{UserID: "mia"}, Code: 1, At: 1_764_525_731_204_000},
		{Kind: presence.KindViewport, User: presence.User{UserID: "tina"}, Wire: []byte(`v`), At: 1},
	} {
		withTime := encode(node, e)
		old := withTime[:len(withTime)-len(binary.AppendUvarint(nil, uint64(e.At)))]
		_, got, rest, err := decode(old)
		want := *e
		want.At = 0
		if err != nil || !reflect.DeepEqual(got, &want) || len(rest) != 0 {
			t.Errorf("kind %d without its time: %+v, rest %d bytes, %v; want %+v", e.Kind, got, len(rest), err, want)
		}
		// The old format is a prefix of the new one: what an old node decodes is the event.
		if !bytes.HasPrefix(withTime, old) {
			t.Errorf("kind %d: the timed encoding does not start with the untimed one", e.Kind)
		}
	}
}

// An event from a node that does not send times is stamped on receipt, so that it is not
// taken for older than every timed one.
func TestReceiveStampsUntimedEvents(t *testing.T) {
	t.Parallel()
	srv := startNATS(t, 0)
	b, err := Connect(Options{URL: srv.ClientURL(), Node: uuid.New()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	other, err := Connect(Options{URL: srv.ClientURL(), Node: uuid.New()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	s := uuid.New()
	got := make(chan *presence.Event, 1)
	defer b.Subscribe(s, func(e *presence.Event) { got <- e })()
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e := &presence.Event{Kind: presence.KindState, User: presence.User{UserID: "mia"}, Wire: []byte(`{}`), At: 1}
	data := encode(other.node, e)
	data = data[:len(data)-1] // At 1 is one uvarint byte
	before := time.Now().UnixMicro()
	if err := other.nc.Publish(Subject(s), data); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.At < before || e.At > time.Now().UnixMicro() {
			t.Errorf("untimed state received with At %d, want the time of receipt (≥ %d)", e.At, before)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("untimed state not received")
	}
}

type recorder struct {
	mu sync.Mutex
	ev []presence.Kind
}

func (r *recorder) deliver(e *presence.Event) {
	r.mu.Lock()
	r.ev = append(r.ev, e.Kind)
	r.mu.Unlock()
}

func (r *recorder) kinds() []presence.Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]presence.Kind(nil), r.ev...)
}

// TestTwoNodes: an event reaches the publishing node's subscribers once (in process, not
// again through NATS) and the other node's once, in order.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	connect := func() *Bus {
		b, err := Connect(Options{URL: srv.ClientURL(), Node: uuid.New()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	a, b := connect(), connect()
	s := uuid.New()
	var onA, onB recorder
	unsubA := a.Subscribe(s, onA.deliver)
	defer unsubA()
	defer b.Subscribe(s, onB.deliver)()
	if err := b.nc.Flush(); err != nil { // b's subscription is registered with the server
		t.Fatal(err)
	}
	a.Publish(s, &presence.Event{Kind: presence.KindJoin, User: presence.User{UserID: "u"}})
	a.Publish(s, &presence.Event{Kind: presence.KindCursor, User: presence.User{UserID: "u"}})
	a.Publish(s, &presence.Event{Kind: presence.KindLeave, User: presence.User{UserID: "u"}})
	want := []presence.Kind{presence.KindJoin, presence.KindCursor, presence.KindLeave}
	deadline := time.Now().Add(10 * time.Second)
	for len(onB.kinds()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.nc.Flush(); err != nil { // a's own messages have come back by now
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := onA.kinds(); !reflect.DeepEqual(got, want) {
		t.Errorf("publishing node delivered %v, want %v once", got, want)
	}
	if got := onB.kinds(); !reflect.DeepEqual(got, want) {
		t.Errorf("other node delivered %v, want %v", got, want)
	}

	// Close requests reach both nodes once: a member's (every session of a classroom) and
	// a whole session's.
	closedA, closedB := make(chan presence.Close, 4), make(chan presence.Close, 4)
	a.OnClose(func(c presence.Close) { closedA <- c })
	b.OnClose(func(c presence.Close) { closedB <- c })
	class := uuid.New()
	for _, c := range []presence.Close{
		{ClassroomID: class, UserID: "mia", Code: 4403, Reason: "forbidden"},
		{ClassroomID: class, SessionID: s, Code: 4403, Reason: "session_ended"},
	} {
		if err := a.PublishClose(c); err != nil {
			t.Fatal(err)
		}
		for name, ch := range map[string]chan presence.Close{"a": closedA, "b": closedB} {
			select {
			case got := <-ch:
				if got != c {
					t.Errorf("node %s: close = %+v, want %+v", name, got, c)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("node %s: close request not received within 10s", name)
			}
		}
	}
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(closedA) != 0 {
		t.Errorf("node a got its own close request back: %+v", <-closedA)
	}
}

// TestSync: a node's sync request collects the other nodes' answers, stops waiting once every
// wanted user is covered, and gives up after SyncTimeout on a user nobody answers for; a node
// without the session stays silent and a node never answers itself.
func TestSync(t *testing.T) {
	t.Parallel()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	s := uuid.New()
	connect := func(users ...string) *Bus {
		b, err := Connect(Options{URL: srv.ClientURL(), Node: uuid.New(), SyncTimeout: 400 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		b.OnSync(func(session uuid.UUID, want []string) []presence.UserState {
			if session != s {
				return nil
			}
			var out []presence.UserState
			for _, u := range users {
				if !slices.Contains(want, u) {
					continue // the request names the users it wants
				}
				out = append(out, presence.UserState{UserID: u, State: `{"on":"` + u + `"}`, HandAt: time.UnixMilli(1).UTC()})
			}
			return out
		})
		if err := b.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := connect("self") // a never gets its own request
	connect("mia")
	connect("sam", "tom")
	connect() // has nothing: silent
	ids := func(states []presence.UserState) []string {
		var out []string
		for _, st := range states {
			out = append(out, st.UserID)
		}
		slices.Sort(out)
		return out
	}
	start := time.Now()
	got := a.Sync(context.Background(), s, []string{"mia", "sam", "tom"})
	if d := time.Since(start); !slices.Equal(ids(got), []string{"mia", "sam", "tom"}) || d > 300*time.Millisecond {
		t.Fatalf("Sync = %v after %v, want mia, sam, tom at once", ids(got), d)
	}
	for _, st := range got {
		if st.State != `{"on":"`+st.UserID+`"}` || !st.HandAt.Equal(time.UnixMilli(1)) {
			t.Fatalf("answer %+v lost its fields on the way", st)
		}
	}
	start = time.Now()
	got = a.Sync(context.Background(), s, []string{"mia", "ghost"})
	if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second || !slices.Contains(ids(got), "mia") {
		t.Fatalf("Sync for a user nobody has = %v after %v, want mia's answer after the 400ms timeout", ids(got), d)
	}
	if got := a.Sync(context.Background(), uuid.New(), []string{"mia"}); len(got) != 0 {
		t.Fatalf("Sync of a session nobody has = %v", got)
	}
}
