package attendance_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/attendance"
	"github.com/m4sh/backend/internal/cluster"
	"github.com/m4sh/backend/internal/presence"
)

// A crash between a presence change and the writer's flush loses neither span nor event:
// what the dead node's queue held is written by a live node's sweep from the presence rows.
//   - a's writer never runs (everything it queues dies with it): mia and sam arrive on a
//     (first in the cluster), mia reconnects to b, a dies. b's sweep opens both spans at
//     their first row's time (sam's before his row is purged), then ends sam's at a's last
//     heartbeat: mia's goes on.
//   - b's writer is stopped (what it is handed is dropped) before mia leaves b: c's sweep
//     ends her span, now (at most one sweep interval after her leave).
//
// Every span start and end comes with its event, once.
func TestCrashBeforeTheWriterFlushes(t *testing.T) {
	t.Parallel()
	f, _ := webhookFixture(t)
	ctx := context.Background()
	pool := f.Env.Pool
	s := f.Session.Id
	const purgeAfter = 3 * time.Second
	// Nodes not started: heartbeats are written and sweeps run by hand.
	node := func(rec *attendance.Recorder) *cluster.Node {
		n := cluster.New(pool, cluster.Options{PurgeAfter: purgeAfter, Recorder: rec})
		beat(t, pool, n.ID(), 0)
		return n
	}
	lostA := attendance.New(pool, nil, f.Env.App.Webhooks) // never started
	recB := attendance.New(pool, nil, f.Env.App.Webhooks)
	recB.StartCluster()
	a, b := node(lostA), node(recB)
	mia := presence.User{UserID: "mia", Name: "Mia", Role: "student"}
	sam := presence.User{UserID: "sam", Name: "Sam", Role: "student"}
	for _, u := range []presence.User{mia, sam} {
		if first, err := a.Arrive(ctx, s, u, 1, presence.Caps{}); !first || err != nil {
			t.Fatalf("%s on a: first %v, %v", u.UserID, first, err)
		}
	}
	if first, err := b.Arrive(ctx, s, mia, 1, presence.Caps{}); first || err != nil {
		t.Fatalf("mia on b: first %v, %v; want not first", first, err)
	}
	// The rows were written Settle and more ago; a's last heartbeat came after them, and it
	// has been silent longer than the purge age since.
	arrived := backdate(t, pool, 10*time.Second)
	lastBeat := beat(t, pool, a.ID(), purgeAfter+2*time.Second)
	beat(t, pool, b.ID(), 0)
	if err := recB.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := spanList(t, pool, s); got != "" {
		t.Fatalf("spans before the sweep = %q, want none (a's writer never ran)", got)
	}
	if err := b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	want := "mia " + arrived.Format(time.RFC3339Nano) + " open; sam " + arrived.Format(time.RFC3339Nano) + " " + lastBeat.Format(time.RFC3339Nano)
	if got := spanList(t, pool, s); got != want {
		t.Fatalf("spans after b's sweep = %q\nwant %q", got, want)
	}

	// b's writer stops (the transitions handed to it are dropped, as by a crash) and mia
	// leaves b; a new node c sweeps once her span is older than Settle.
	recB.Stop(ctx)
	if last := b.Depart(ctx, s, "mia", 0); !last {
		t.Fatal("mia's departure from b not last")
	}
	left := time.Now()
	recC := attendance.New(pool, nil, f.Env.App.Webhooks)
	recC.StartCluster()
	t.Cleanup(func() { recC.Stop(ctx) })
	c := node(recC)
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	swept := time.Now()
	var end time.Time
	if err := pool.QueryRow(ctx, "SELECT left_at FROM attendance_spans WHERE session_id = $1 AND user_id = 'mia'", s).Scan(&end); err != nil {
		t.Fatal(err)
	}
	if end.Before(left.Add(-time.Millisecond)) || end.After(swept) {
		t.Fatalf("mia's span ended at %v, want between her leave (%v) and c's sweep (%v)", end, left, swept)
	}
	wantEvents := "participant.joined mia, participant.joined sam, participant.left mia, participant.left sam"
	if got := jobEvents(t, pool); got != wantEvents {
		t.Fatalf("events = %q, want %q", got, wantEvents)
	}
	// Nothing more to repair: a second sweep writes nothing.
	if err := c.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := jobEvents(t, pool); got != wantEvents {
		t.Fatalf("events after a second sweep = %q, want %q", got, wantEvents)
	}
}

// beat writes node's heartbeat, ago before now, and returns it.
func beat(t *testing.T, pool *pgxpool.Pool, node uuid.UUID, ago time.Duration) time.Time {
	t.Helper()
	var at time.Time
	err := pool.QueryRow(context.Background(), `INSERT INTO presence_nodes (node_id, seen_at) VALUES ($1, now() - make_interval(secs => $2))
		ON CONFLICT (node_id) DO UPDATE SET seen_at = EXCLUDED.seen_at RETURNING seen_at`, node, ago.Seconds()).Scan(&at)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// backdate dates every presence row ago before now, and returns that time.
func backdate(t *testing.T, pool *pgxpool.Pool, ago time.Duration) time.Time {
	t.Helper()
	var at time.Time
	err := pool.QueryRow(context.Background(), "UPDATE presence_connections SET since = now() - make_interval(secs => $1) RETURNING since", ago.Seconds()).Scan(&at)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// spanList lists a session's spans: "user joined_at left_at|open" by user and start.
func spanList(t *testing.T, pool *pgxpool.Pool, session uuid.UUID) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT user_id, joined_at, left_at FROM attendance_spans WHERE session_id = $1 ORDER BY user_id, joined_at", session)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var user string
		var joined time.Time
		var left *time.Time
		if err := rows.Scan(&user, &joined, &left); err != nil {
			t.Fatal(err)
		}
		end := "open"
		if left != nil {
			end = left.Format(time.RFC3339Nano)
		}
		out = append(out, user+" "+joined.Format(time.RFC3339Nano)+" "+end)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "; ")
}

// queuedEvents is a FROM clause with the start of its WHERE (a condition on m follows): one
// row m per event queued as a River job, from batch jobs and single jobs, not counting an
// event a batch handed over to a job of its own twice (m->>'body' is the body's text in both).
const queuedEvents = `river_job, jsonb_array_elements(CASE WHEN kind = 'webhook.deliver_batch'
		THEN args->'events' ELSE jsonb_build_array(args->'message') END) AS m
	WHERE queue = 'webhooks' AND args->>'queued_at' IS NULL AND`

// jobEvents lists the participant events queued as River jobs: "type user", sorted.
func jobEvents(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT m->>'type' || ' ' || ((m->>'body')::jsonb->'data'->>'user_id') FROM `+queuedEvents+`
		m->>'type' LIKE 'participant.%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// One batch holding a user's join, leave and join again, beside other users' joins, is
// written in that order, one event per span start and end: sam and tina are present
// (presence rows), so their spans open; mia's visit is written whole (one ended span); her
// last arrival, with no presence row of hers, is a visit already over (the user left on
// another node before this writer got to it) and opens nothing.
func TestOneBatchKeepsEachUsersOrder(t *testing.T) {
	t.Parallel()
	f, _ := webhookFixture(t)
	ctx := context.Background()
	rec := attendance.New(f.Env.Pool, nil, f.Env.App.Webhooks)
	present := func(users ...string) {
		t.Helper()
		for _, u := range users {
			if _, err := f.Env.Pool.Exec(ctx, `INSERT INTO presence_connections (node_id, session_id, user_id, name, role, conns)
				VALUES ($1, $2, $3, $3, 'student', 1)`, uuid.New(), f.Session.Id, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	present("sam", "tina")
	// Queued before the writer starts: one batch.
	for _, c := range []struct {
		user   string
		joined bool
	}{{"mia", true}, {"sam", true}, {"mia", false}, {"tina", true}, {"mia", true}} {
		rec.Changed(f.Session.Id, presence.User{UserID: c.user, Name: c.user, Role: "student"}, c.joined, time.Now())
		time.Sleep(time.Millisecond)
	}
	rec.StartCluster()
	t.Cleanup(func() { rec.Stop(ctx) })
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := f.Env.Pool.Query(ctx, "SELECT user_id, left_at IS NULL FROM attendance_spans WHERE session_id = $1 ORDER BY user_id, joined_at", f.Session.Id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var user string
		var open bool
		if err := rows.Scan(&user, &open); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(user, " open=", open))
	}
	rows.Close()
	if g, w := strings.Join(got, ", "), "mia open=false, sam open=true, tina open=true"; g != w {
		t.Fatalf("spans = %q, want %q", g, w)
	}
	if g, w := jobEvents(t, f.Env.Pool), "participant.joined mia, participant.joined sam, participant.joined tina, participant.left mia"; g != w {
		t.Fatalf("events = %q, want %q", g, w)
	}
}
