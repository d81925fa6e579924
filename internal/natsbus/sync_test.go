package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/m4sh/backend/internal/presence"
)

// startNATS runs an in-process server with the given max_payload (0: the default).
func startNATS(t *testing.T, maxPayload int32) *natsserver.Server {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// TestSyncAnswersWantedInChunks: a sync request names the users it wants; the answering
// node sends only those, in messages within the server's max_payload however many there
// are (1000 users with 512-byte states are 600 kB, over a 64 kB max_payload here).
func TestSyncAnswersWantedInChunks(t *testing.T) {
	t.Parallel()
	srv := startNATS(t, 64<<10)
	connect := func() *Bus {
		b, err := Connect(Options{URL: srv.ClientURL(), Node: uuid.New(), SyncTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	a, b := connect(), connect()
	s := uuid.New()
	state := `{"pad":"` + strings.Repeat("x", 500) + `"}`
	var all []presence.UserState
	for i := range 1200 {
		all = append(all, presence.UserState{UserID: fmt.Sprintf("u%04d", i), State: state, HandAt: time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)})
	}
	var mu sync.Mutex
	var asked [][]string
	b.OnSync(func(session uuid.UUID, want []string) []presence.UserState {
		mu.Lock()
		asked = append(asked, want)
		mu.Unlock()
		if session != s {
			return nil
		}
		var out []presence.UserState
		for _, st := range all {
			if len(want) == 0 || slices.Contains(want, st.UserID) {
				out = append(out, st)
			}
		}
		return out
	})
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	want := make([]string, 1000)
	for i := range want {
		want[i] = all[i].UserID
	}
	start := time.Now()
	got := a.Sync(context.Background(), s, want)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("sync took %v, want it to end once every wanted user is covered", el)
	}
	if len(got) != 1000 {
		t.Fatalf("sync returned %d states, want 1000", len(got))
	}
	for i, st := range got {
		if st != all[i] {
			t.Fatalf("state %d = %+v, want %+v", i, st, all[i])
		}
	}
	mu.Lock()
	if len(asked) != 1 || !slices.Equal(asked[0], want) {
		t.Errorf("the answering node was asked for %d lists, want one: the 1000 wanted", len(asked))
	}
	mu.Unlock()

	// A request without a body (a node of the previous release) is answered with every
	// user, in chunks too.
	inbox := a.nc.NewRespInbox()
	sub, err := a.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.nc.PublishRequest(syncPrefix+s.String(), inbox, nil); err != nil {
		t.Fatal(err)
	}
	n, msgs := 0, 0
	for n < len(all) {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d states in %d messages: %v", n, msgs, err)
		}
		if len(m.Data) > 32<<10 {
			t.Errorf("an answer of %d bytes, want at most half the max_payload", len(m.Data))
		}
		var states []presence.UserState
		if err := json.Unmarshal(m.Data, &states); err != nil {
			t.Fatal(err)
		}
		n, msgs = n+len(states), msgs+1
	}
	if n != len(all) || msgs < 2 {
		t.Errorf("an empty request got %d states in %d messages, want %d in several", n, msgs, len(all))
	}
}

func TestChunkStates(t *testing.T) {
	t.Parallel()
	states := []presence.UserState{{UserID: "a", State: "1"}, {UserID: "b"}, {UserID: "c", State: strings.Repeat("x", 100)}}
	chunks := chunkStates(states, 40)
	want := []string{`[{"u":"a","s":"1"},{"u":"b"}]`, `[{"u":"c","s":"` + strings.Repeat("x", 100) + `"}]`}
	if len(chunks) != len(want) {
		t.Fatalf("%d chunks %q, want %q", len(chunks), chunks, want)
	}
	for i := range want {
		if string(chunks[i]) != want[i] {
			t.Errorf("chunk %d = %s, want %s", i, chunks[i], want[i])
		}
	}
	if got := chunkStates(nil, 40); got != nil {
		t.Errorf("no states: %q, want no message", got)
	}
}
