package natsbus

import (
	"reflect"
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
	}
	for _, e := range tests {
		gotNode, got, err := decode(encode(node, e))
		if err != nil || gotNode != node || !reflect.DeepEqual(got, e) {
			t.Errorf("decode(encode(%+v)) = %v, %+v, %v", e, gotNode, got, err)
		}
	}
	b := encode(node, tests[2])
	for i := range len(b) - 1 {
		if _, _, err := decode(b[:i]); err == nil {
			t.Errorf("decode of %d of %d bytes succeeded", i, len(b))
		}
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

	closes := make(chan Control, 2)
	b.OnControl(func(c Control) { closes <- c })
	class := uuid.New()
	if err := a.PublishClose(class, "mia", 4403, "forbidden"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-closes:
		if c != (Control{ClassroomID: class, UserID: "mia", Code: 4403, Reason: "forbidden"}) {
			t.Errorf("control = %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("control event not received within 10s")
	}
}
