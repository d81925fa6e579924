package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/cluster"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/presence"
)

type departures struct {
	mu   sync.Mutex
	left []string
}

func (d *departures) add(_ uuid.UUID, user string) {
	d.mu.Lock()
	d.left = append(d.left, user)
	d.mu.Unlock()
}

func (d *departures) get() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.left...)
}

// setup starts two nodes on one database.
func setup(t *testing.T, purgeAfter time.Duration) (a, b *cluster.Node, left *departures) {
	t.Helper()
	url := dbtest.NewURL(t)
	left = &departures{}
	ctx := context.Background()
	mk := func() *cluster.Node {
		n := cluster.New(dbtest.Pool(t, url), cluster.Options{HeartbeatInterval: purgeAfter / 3, PurgeAfter: purgeAfter, OnDeparted: left.add})
		n.Start(ctx)
		return n
	}
	return mk(), mk(), left
}

func TestArriveDepartOncePerUserAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b, _ := setup(t, 30*time.Second)
	t.Cleanup(func() { a.Stop(context.Background()); b.Stop(context.Background()) })
	ctx := context.Background()
	s := uuid.New()
	sam := presence.User{UserID: "sam", Name: "Sam", Role: "student"}

	// Concurrent first arrivals on both nodes: exactly one is first.
	var wg sync.WaitGroup
	firsts := make([]bool, 2)
	for i, n := range []*cluster.Node{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); firsts[i], _ = n.Arrive(ctx, s, sam, 1, presence.Caps{}) }()
	}
	wg.Wait()
	if firsts[0] == firsts[1] {
		t.Fatalf("Arrive on a, b = %v, want exactly one first", firsts)
	}
	if first, _ := a.Arrive(ctx, s, sam, 2, presence.Caps{}); first {
		t.Error("a second tab on a arrived first")
	}
	users, err := b.Present(ctx, s)
	if err != nil || len(users) != 1 || users[0] != sam {
		t.Fatalf("Present = %v, %v, want [sam] once", users, err)
	}
	if last := a.Depart(ctx, s, "sam", 1); last {
		t.Error("a tab closing while another stays open departed last")
	}
	if last := a.Depart(ctx, s, "sam", 0); last {
		t.Error("sam departed a while on b: reported last")
	}
	if last := b.Depart(ctx, s, "sam", 0); !last {
		t.Error("sam's last connection (on b) not reported last")
	}
	if users, _ := a.Present(ctx, s); len(users) != 0 {
		t.Errorf("Present after leaving = %v, want none", users)
	}
}

func TestDeadNodePurgedOnce(t *testing.T) {
	t.Parallel()
	a, b, left := setup(t, 900*time.Millisecond)
	t.Cleanup(func() { a.Stop(context.Background()) })
	ctx := context.Background()
	s := uuid.New()
	b.Arrive(ctx, s, presence.User{UserID: "sam", Name: "Sam", Role: "student"}, 1, presence.Caps{})
	b.Arrive(ctx, s, presence.User{UserID: "tina", Name: "Tina", Role: "tutor"}, 1, presence.Caps{})
	a.Arrive(ctx, s, presence.User{UserID: "tina", Name: "Tina", Role: "tutor"}, 1, presence.Caps{})
	b.Crash() // stops beating without cleaning up, like kill -9
	deadline := time.Now().Add(30 * time.Second)
	for len(left.get()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no departure within 30s of b's death")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // more sweeps: nothing more may be reported
	if got := left.get(); len(got) != 1 || got[0] != "sam" {
		t.Fatalf("departures = %v, want [sam] (tina is still on a)", got)
	}
	users, err := a.Present(ctx, s)
	if err != nil || len(users) != 1 || users[0].UserID != "tina" {
		t.Fatalf("Present = %v, %v, want [tina]", users, err)
	}
}

// A node cut off from the database long enough to be purged finds out at its next
// heartbeat and is told to record its connections again.
func TestPurgedNodeIsToldOnItsNextHeartbeat(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	purged := make(chan struct{}, 1)
	n := cluster.New(dbtest.Pool(t, url), cluster.Options{
		HeartbeatInterval: 300 * time.Millisecond, PurgeAfter: 900 * time.Millisecond,
		OnPurged: func(context.Context) { purged <- struct{}{} },
	})
	n.Start(context.Background())
	t.Cleanup(func() { n.Stop(context.Background()) })
	select {
	case <-purged:
		t.Fatal("OnPurged called while the node was never purged")
	case <-time.After(time.Second):
	}
	// What the other nodes' sweep does to a node silent for PurgeAfter.
	if _, err := dbtest.Pool(t, url).Exec(context.Background(), "DELETE FROM presence_nodes WHERE node_id = $1", n.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-purged:
	case <-time.After(20 * time.Second):
		t.Fatal("OnPurged not called within 20s of the node's row being purged")
	}
}

// TestArriveCapsAcrossNodes: the caps count every live node's connections; a refused arrival
// records nothing, and concurrent arrivals on two nodes are admitted one at a time.
func TestArriveCapsAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b, _ := setup(t, 30*time.Second)
	t.Cleanup(func() { a.Stop(context.Background()); b.Stop(context.Background()) })
	ctx := context.Background()
	s := uuid.New()
	caps := presence.Caps{PerUser: 2, PerSession: 3}
	mia := presence.User{UserID: "mia", Name: "Mia", Role: "student"}
	steps := []struct {
		name  string
		node  *cluster.Node
		user  presence.User
		conns int
		want  error
	}{
		{"mia's first on a", a, mia, 1, nil},
		{"mia's second on b", b, mia, 1, nil},
		{"mia's third on a", a, mia, 2, presence.ErrTooManyConnections},
		{"tina on b", b, presence.User{UserID: "tina", Name: "Tina", Role: "tutor"}, 1, nil},
		{"sam on a: a fourth in the session", a, presence.User{UserID: "sam", Name: "Sam", Role: "student"}, 1, presence.ErrSessionFull},
	}
	for _, st := range steps {
		if _, err := st.node.Arrive(ctx, s, st.user, st.conns, caps); !errors.Is(err, st.want) || (err == nil) != (st.want == nil) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
		}
	}
	users, err := a.Present(ctx, s)
	if err != nil || len(users) != 2 {
		t.Fatalf("Present = %v, %v; want mia and tina only (refusals recorded nothing)", users, err)
	}

	// Two nodes racing for the last place: exactly one gets it.
	s2 := uuid.New()
	one := presence.Caps{PerSession: 1}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, n := range []*cluster.Node{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = n.Arrive(ctx, s2, presence.User{UserID: fmt.Sprint("u", i), Name: "U", Role: "student"}, 1, one)
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("racing arrivals for one place: %v", errs)
	}
}

// A dead node's users leave no sooner than the leave grace after its last heartbeat, and
// not at all when they came back on another node within it (issue 17).
func TestDeadNodeHonoursLeaveGrace(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	left := &departures{}
	var leftAt []time.Time
	var mu sync.Mutex
	const grace = 2 * time.Second
	mk := func() *cluster.Node {
		n := cluster.New(dbtest.Pool(t, url), cluster.Options{
			HeartbeatInterval: 200 * time.Millisecond, PurgeAfter: 600 * time.Millisecond, LeaveGrace: grace,
			OnDeparted: func(s uuid.UUID, u string) {
				mu.Lock()
				leftAt = append(leftAt, time.Now())
				mu.Unlock()
				left.add(s, u)
			},
		})
		n.Start(context.Background())
		return n
	}
	a, b := mk(), mk()
	t.Cleanup(func() { a.Stop(context.Background()) })
	ctx := context.Background()
	s := uuid.New()
	sam := presence.User{UserID: "sam", Name: "Sam", Role: "student"}
	mia := presence.User{UserID: "mia", Name: "Mia", Role: "student"}
	b.Arrive(ctx, s, sam, 1, presence.Caps{})
	b.Arrive(ctx, s, mia, 1, presence.Caps{})
	b.Crash()
	crashed := time.Now()
	time.Sleep(grace / 2)
	if first, _ := a.Arrive(ctx, s, mia, 1, presence.Caps{}); first {
		t.Error("mia back on a within the grace arrived first")
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(left.get()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no departure within 20s of b's death")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // more sweeps: nothing more may be reported
	if got := left.get(); len(got) != 1 || got[0] != "sam" {
		t.Fatalf("departures = %v, want [sam] (mia came back on a within the grace)", got)
	}
	// b's last heartbeat was at most one interval before the crash.
	if after := leftAt[0].Sub(crashed); after < grace-200*time.Millisecond {
		t.Fatalf("sam left %v after b's crash, want at least the grace (%v) after its last heartbeat", after, grace)
	}
	users, err := a.Present(ctx, s)
	if err != nil || len(users) != 1 || users[0].UserID != "mia" {
		t.Fatalf("Present = %v, %v, want [mia]", users, err)
	}
}

// failingRecorder fails departures of one user; it records the others.
type failingRecorder struct {
	fail string
	mu   sync.Mutex
	at   map[string]time.Time
}

func (r *failingRecorder) Changed(uuid.UUID, presence.User, bool, time.Time) {}

func (r *failingRecorder) Reconcile(context.Context) error { return nil }

func (r *failingRecorder) EndDeadNodes(context.Context, time.Duration) error { return nil }

func (r *failingRecorder) Departed(_ context.Context, _ pgx.Tx, _ uuid.UUID, user string, at time.Time) error {
	if user == r.fail {
		return errors.New("recorder refuses " + user)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at[user] = at
	return nil
}

// A row that fails does not stop the sweep: the others are purged, the error names the
// failed one, and it is retried by later sweeps (its node's heartbeat row is kept for it).
// The Recorder sees a dead node's users depart at the node's last heartbeat.
func TestSweepGoesOnPastAFailedRow(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	pool := dbtest.Pool(t, url)
	rec := &failingRecorder{fail: "bob", at: map[string]time.Time{}}
	// Neither node is started: Sweep is called by hand.
	a := cluster.New(pool, cluster.Options{PurgeAfter: time.Hour, Recorder: rec})
	b := cluster.New(pool, cluster.Options{PurgeAfter: time.Hour, Recorder: rec})
	ctx := context.Background()
	s := uuid.New()
	for _, u := range []string{"amy", "bob", "cat"} {
		if _, err := b.Arrive(ctx, s, presence.User{UserID: u, Name: u, Role: "student"}, 1, presence.Caps{}); err != nil {
			t.Fatal(err)
		}
	}
	lastBeat := time.Now().Add(-2 * time.Hour).Truncate(time.Microsecond)
	if _, err := pool.Exec(ctx, "INSERT INTO presence_nodes (node_id, seen_at) VALUES ($1, $2)", b.ID(), lastBeat); err != nil {
		t.Fatal(err)
	}
	err := a.Sweep(ctx)
	if err == nil || !strings.Contains(err.Error(), `"bob"`) {
		t.Fatalf("Sweep = %v, want an error naming bob", err)
	}
	if len(rec.at) != 2 || !rec.at["amy"].Equal(lastBeat) || !rec.at["cat"].Equal(lastBeat) {
		t.Fatalf("departures recorded = %v, want amy and cat at b's last heartbeat %v", rec.at, lastBeat)
	}
	var rows, nodes int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM presence_connections), (SELECT count(*) FROM presence_nodes WHERE node_id = $1)", b.ID()).Scan(&rows, &nodes); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || nodes != 1 {
		t.Fatalf("after the sweep: %d presence rows, b's heartbeat rows %d; want bob's row and b's heartbeat kept for the next sweep", rows, nodes)
	}
	rec.fail = ""
	if err := a.Sweep(ctx); err != nil {
		t.Fatalf("second Sweep = %v", err)
	}
	if !rec.at["bob"].Equal(lastBeat) {
		t.Fatalf("bob departed at %v, want %v", rec.at["bob"], lastBeat)
	}
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM presence_connections), (SELECT count(*) FROM presence_nodes)").Scan(&rows, &nodes); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || nodes != 0 {
		t.Fatalf("after the second sweep: %d presence rows, %d nodes; want none", rows, nodes)
	}
}

// recorder records arrivals and departures (with their time) per user.
type recorder struct {
	mu       sync.Mutex
	arrived  map[string]int
	departed map[string][]time.Time
}

func newRecorder() *recorder {
	return &recorder{arrived: map[string]int{}, departed: map[string][]time.Time{}}
}

func (r *recorder) Changed(_ uuid.UUID, u presence.User, joined bool, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if joined {
		r.arrived[u.UserID]++
	} else {
		r.departed[u.UserID] = append(r.departed[u.UserID], at)
	}
}

func (r *recorder) Reconcile(context.Context) error { return nil }

func (r *recorder) Departed(_ context.Context, _ pgx.Tx, _ uuid.UUID, user string, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.departed[user] = append(r.departed[user], at)
	return nil
}

func (r *recorder) EndDeadNodes(context.Context, time.Duration) error { return nil }

func (r *recorder) counts() (arrived map[string]int, departed map[string][]time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	arrived, departed = map[string]int{}, map[string][]time.Time{}
	for k, v := range r.arrived {
		arrived[k] = v
	}
	for k, v := range r.departed {
		departed[k] = append([]time.Time(nil), v...)
	}
	return arrived, departed
}

// A node stopping cleanly (a rolling restart) is to the others a crash at its stop: a user
// who reconnects to another node within the leave grace never leaves and stays in one
// attendance span; one who does not leaves after the grace, their attendance ending at the
// stop. A grace running out on the stopping node records nothing there.
func TestStopLeavesItsUsersToTheGrace(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	pool := dbtest.Pool(t, url)
	left := &departures{}
	rec := newRecorder()
	const grace = 1500 * time.Millisecond
	mk := func() *cluster.Node {
		n := cluster.New(dbtest.Pool(t, url), cluster.Options{
			HeartbeatInterval: 200 * time.Millisecond, PurgeAfter: 300 * time.Millisecond, LeaveGrace: grace,
			Recorder: rec, OnDeparted: left.add,
		})
		n.Start(context.Background())
		return n
	}
	a, b := mk(), mk()
	t.Cleanup(func() { b.Stop(context.Background()) })
	ctx := context.Background()
	s := uuid.New()
	sam := presence.User{UserID: "sam", Name: "Sam", Role: "student"}
	mia := presence.User{UserID: "mia", Name: "Mia", Role: "student"}
	for _, u := range []presence.User{sam, mia} {
		if first, err := a.Arrive(ctx, s, u, 1, presence.Caps{}); !first || err != nil {
			t.Fatalf("%s on a: first %v, %v", u.UserID, first, err)
		}
	}
	beforeStop := time.Now()
	a.Stop(ctx)
	stopped := time.Now()
	if last := a.Depart(ctx, s, "sam", 0); last {
		t.Error("a grace running out on the stopped node reported sam's departure")
	}
	time.Sleep(grace / 3)
	if first, err := b.Arrive(ctx, s, mia, 1, presence.Caps{}); first || err != nil {
		t.Fatalf("mia back on b within the grace: first %v, %v; want not first", first, err)
	}
	if users, err := b.Present(ctx, s); err != nil || len(users) != 2 {
		t.Fatalf("Present on b within the grace = %v, %v; want mia and sam", users, err)
	}
	waitFor := time.Now().Add(20 * time.Second)
	for len(left.get()) == 0 {
		if time.Now().After(waitFor) {
			t.Fatal("no departure within 20s of a's stop")
		}
		time.Sleep(20 * time.Millisecond)
	}
	leftAfter := time.Since(stopped)
	time.Sleep(time.Second) // more sweeps: nothing more may be reported
	if got := left.get(); len(got) != 1 || got[0] != "sam" {
		t.Fatalf("departures = %v, want [sam] (mia came back on b within the grace)", got)
	}
	if leftAfter < grace {
		t.Fatalf("sam left %v after a's stop, want no sooner than the grace (%v)", leftAfter, grace)
	}
	arrived, departed := rec.counts()
	if arrived["sam"] != 1 || arrived["mia"] != 1 || len(departed) != 1 || len(departed["sam"]) != 1 {
		t.Fatalf("recorded arrivals %v, departures %v; want one each, sam's departure only", arrived, departed)
	}
	// The database's clock is this machine's: the last heartbeat was taken inside Stop.
	if at := departed["sam"][0]; at.Before(beforeStop.Add(-time.Millisecond)) || at.After(stopped.Add(time.Millisecond)) {
		t.Fatalf("sam departed at %v, want a's stop (between %v and %v)", at, beforeStop, stopped)
	}
	users, err := b.Present(ctx, s)
	if err != nil || len(users) != 1 || users[0].UserID != "mia" {
		t.Fatalf("Present = %v, %v, want [mia]", users, err)
	}
	var nodes int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM presence_nodes WHERE node_id = $1", a.ID()).Scan(&nodes); err != nil || nodes != 0 {
		t.Fatalf("a's heartbeat rows after the sweep = %d, %v; want 0", nodes, err)
	}
	if got := counter(t, b.Collectors()[0]); got != 0 {
		t.Fatalf("b's m4sh_cluster_presence_purged_total = %v after sweeping a stopped node, want 0 (no incident)", got)
	}

	// A node that stops with no rows left removes its heartbeat at once.
	c := mk()
	if _, err := c.Arrive(ctx, s, sam, 1, presence.Caps{}); err != nil {
		t.Fatal(err)
	}
	if last := c.Depart(ctx, s, "sam", 0); !last {
		t.Fatal("sam's only connection, on c, not reported last")
	}
	c.Stop(ctx)
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM presence_nodes WHERE node_id = $1", c.ID()).Scan(&nodes); err != nil || nodes != 0 {
		t.Fatalf("c's heartbeat rows after a stop with no rows = %d, %v; want 0", nodes, err)
	}
}

// After a restart, an arrival that comes before any sweep does not count the rows of a dead
// node: the user left with it (their leave reported, before the arrival returns, and their
// attendance ended at its last heartbeat) and arrives anew. Start sweeps before it returns.
func TestArrivalIgnoresDeadNodesBeforeTheSweep(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	pool := dbtest.Pool(t, url)
	ctx := context.Background()
	s := uuid.New()
	rec := newRecorder()
	left := &departures{}
	// Not started: no sweep runs unless called.
	opts := cluster.Options{PurgeAfter: time.Minute, Recorder: rec, OnDeparted: left.add}
	dead, a := cluster.New(pool, opts), cluster.New(pool, opts)
	sam := presence.User{UserID: "sam", Name: "Sam", Role: "student"}
	tina := presence.User{UserID: "tina", Name: "Tina", Role: "tutor"}
	for _, u := range []presence.User{sam, tina} {
		if _, err := dead.Arrive(ctx, s, u, 1, presence.Caps{}); err != nil {
			t.Fatal(err)
		}
	}
	lastBeat := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	// a beat just now (as Start would) but has not swept.
	if _, err := pool.Exec(ctx, "INSERT INTO presence_nodes (node_id, seen_at) VALUES ($1, $2), ($3, now())", dead.ID(), lastBeat, a.ID()); err != nil {
		t.Fatal(err)
	}
	if first, err := a.Arrive(ctx, s, sam, 1, presence.Caps{}); !first || err != nil {
		t.Fatalf("sam back after the dead node's purge age: first %v, %v; want first", first, err)
	}
	if got := left.get(); len(got) != 1 || got[0] != "sam" {
		t.Fatalf("departures reported by the arrival = %v, want [sam]", got)
	}
	arrived, departed := rec.counts()
	if arrived["sam"] != 2 || len(departed["sam"]) != 1 || !departed["sam"][0].Equal(lastBeat) {
		t.Fatalf("sam: %d arrivals, departures %v; want 2 and one at the dead node's last heartbeat %v", arrived["sam"], departed["sam"], lastBeat)
	}

	// Starting a node sweeps before Start returns: tina, on the dead node only, has left.
	b := cluster.New(pool, cluster.Options{PurgeAfter: time.Minute, Recorder: rec, OnDeparted: left.add})
	b.Start(ctx)
	t.Cleanup(func() { b.Stop(ctx) })
	if got := left.get(); len(got) != 2 || got[1] != "tina" {
		t.Fatalf("departures after b's start = %v, want [sam tina]", got)
	}
	var rows int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM presence_connections WHERE node_id = $1", dead.ID()).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the dead node's rows after b's start = %d, %v; want 0", rows, err)
	}
	users, err := b.Present(ctx, s)
	if err != nil || len(users) != 1 || users[0].UserID != "sam" {
		t.Fatalf("Present = %v, %v; want [sam]", users, err)
	}
}

// refuseDeletes makes deleting the presence rows of the users in test_refused_deletes fail
// (a departure whose transaction fails, as when the database is briefly unreachable).
func refuseDeletes(t *testing.T, pool *pgxpool.Pool) func(user string, refuse bool) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `CREATE TABLE test_refused_deletes (user_id text PRIMARY KEY);
CREATE FUNCTION test_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM test_refused_deletes r WHERE r.user_id = OLD.user_id) THEN
		RAISE EXCEPTION 'test: deleting the presence of % refused', OLD.user_id;
	END IF;
	RETURN OLD;
END $$;
CREATE TRIGGER test_refuse_delete BEFORE DELETE ON presence_connections FOR EACH ROW EXECUTE FUNCTION test_refuse_delete();`)
	if err != nil {
		t.Fatal(err)
	}
	return func(user string, refuse bool) {
		t.Helper()
		q := "DELETE FROM test_refused_deletes WHERE user_id = $1"
		if refuse {
			q = "INSERT INTO test_refused_deletes VALUES ($1)"
		}
		if _, err := pool.Exec(ctx, q, user); err != nil {
			t.Fatal(err)
		}
	}
}

// The Recorder hears of an arrival or a departure only once its transaction committed: a
// refused arrival (over a cap) is not recorded; a departure whose transaction fails keeps the
// row, answers last (the leave goes out) and is retried at the next ticks, then recorded once
// at its own time, unless the user arrived again meanwhile.
func TestFailedRecordsKeepPresenceRight(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	ctx := context.Background()
	s := uuid.New()
	rec := newRecorder()
	refuse := refuseDeletes(t, dbtest.Pool(t, url))
	mk := func() *cluster.Node {
		n := cluster.New(dbtest.Pool(t, url), cluster.Options{HeartbeatInterval: 200 * time.Millisecond, PurgeAfter: time.Minute, Recorder: rec})
		n.Start(ctx)
		t.Cleanup(func() { n.Stop(ctx) })
		return n
	}
	a, b := mk(), mk()
	present := func() string {
		t.Helper()
		users, err := b.Present(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(users))
		for i, u := range users {
			ids[i] = u.UserID
		}
		return strings.Join(ids, ",")
	}
	user := func(id string) presence.User { return presence.User{UserID: id, Name: id, Role: "student"} }

	if first, err := a.Arrive(ctx, s, user("amy"), 1, presence.Caps{PerSession: 1}); !first || err != nil {
		t.Fatalf("amy's arrival: first %v, %v; want first", first, err)
	}
	if _, err := b.Arrive(ctx, s, user("dan"), 1, presence.Caps{PerSession: 1}); !errors.Is(err, presence.ErrSessionFull) {
		t.Fatalf("dan's arrival over the session cap: %v, want ErrSessionFull", err)
	}
	if arrived, _ := rec.counts(); arrived["amy"] != 1 || arrived["dan"] != 0 {
		t.Fatalf("arrivals recorded %v, want amy's only (dan was refused)", arrived)
	}

	// bob's departure fails: his row stays until a retry removes it, and his departure is
	// recorded then, at its own time.
	if _, err := a.Arrive(ctx, s, user("bob"), 1, presence.Caps{}); err != nil {
		t.Fatal(err)
	}
	refuse("bob", true)
	before := time.Now()
	if last := a.Depart(ctx, s, "bob", 0); !last {
		t.Fatal("bob's failed departure not answered last")
	}
	after := time.Now()
	time.Sleep(500 * time.Millisecond) // retries fail meanwhile
	if got := present(); got != "amy,bob" {
		t.Fatalf("Present while bob's departure fails = %q, want amy,bob", got)
	}
	if _, departed := rec.counts(); len(departed["bob"]) != 0 {
		t.Fatalf("bob's departures %v while his row stays, want none", departed["bob"])
	}
	refuse("bob", false)
	deadline := time.Now().Add(10 * time.Second)
	for present() != "amy" {
		if time.Now().After(deadline) {
			t.Fatalf("bob's row not removed within 10s of his departure healing: %q", present())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, departed := rec.counts()
	if d := departed["bob"]; len(d) != 1 || d[0].Before(before) || d[0].After(after) {
		t.Fatalf("bob's departures %v, want one at his departure (between %v and %v)", d, before, after)
	}

	// cat's departure fails (her leave went out), then she is back before a retry succeeds
	// (on c, whose loop does not run: no retry races her return): she arrives first again
	// (her join goes out) and her new row stays.
	c := cluster.New(dbtest.Pool(t, url), cluster.Options{PurgeAfter: time.Minute, Recorder: rec})
	if _, err := dbtest.Pool(t, url).Exec(ctx, "INSERT INTO presence_nodes (node_id) VALUES ($1)", c.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Arrive(ctx, s, user("cat"), 1, presence.Caps{}); err != nil {
		t.Fatal(err)
	}
	refuse("cat", true)
	if last := c.Depart(ctx, s, "cat", 0); !last {
		t.Fatal("cat's failed departure not answered last")
	}
	refuse("cat", false)
	if first, err := c.Arrive(ctx, s, user("cat"), 1, presence.Caps{}); !first || err != nil {
		t.Fatalf("cat back after her failed departure: first %v, %v; want first", first, err)
	}
	c.Stop(ctx) // retries what is pending: nothing
	if got := present(); got != "amy,cat" {
		t.Fatalf("Present after cat came back = %q, want amy,cat", got)
	}
	if arrived, departed := rec.counts(); len(departed["cat"]) != 0 || arrived["cat"] != 2 {
		t.Fatalf("cat: %d arrivals, departures %v; want 2 arrivals and no departure (she came back)", arrived["cat"], departed["cat"])
	}
}
