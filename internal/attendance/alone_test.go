package attendance_test

import (
	"context"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/attendance"
	"github.com/m4sh/backend/internal/cluster"
	"github.com/m4sh/backend/internal/presence"
)

// Nodes alone on one database (a rolling deploy's overlap): each ends only its own spans at
// shutdown; a user who reconnects to another within the grace keeps one span (taken over,
// no second participant.joined); the spans of one that was killed are ended at its last
// heartbeat by the next node's sweep, with their participant.left.
func TestNodesAloneEndOnlyTheirOwnSpans(t *testing.T) {
	t.Parallel()
	f, _ := webhookFixture(t)
	ctx := context.Background()
	pool := f.Env.Pool
	s := f.Session.Id
	type alone struct {
		node *cluster.Node
		rec  *attendance.Recorder
	}
	start := func() alone {
		rec := attendance.New(pool, nil, f.Env.App.Webhooks)
		// A purge age well above the heartbeat: a node slowed by a loaded machine is not dead.
		node := cluster.New(pool, cluster.Options{HeartbeatInterval: 100 * time.Millisecond, PurgeAfter: 2 * time.Second, Recorder: rec})
		rec.Start(node.ID())
		node.Start(ctx)
		t.Cleanup(func() { rec.Stop(ctx); node.Stop(ctx) })
		return alone{node, rec}
	}
	do := func(n alone, user string, joined bool) {
		t.Helper()
		n.rec.Transition(ctx, s, presence.User{UserID: user, Name: user, Role: "student"}, joined)
		if err := n.rec.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	type span struct {
		user             string
		open             bool
		joinedAt, leftAt time.Time
	}
	spans := func() []span {
		t.Helper()
		rows, err := pool.Query(ctx, "SELECT user_id, left_at IS NULL, joined_at, coalesce(left_at, 'epoch') FROM attendance_spans WHERE session_id = $1 ORDER BY user_id, joined_at", s)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []span
		for rows.Next() {
			var sp span
			if err := rows.Scan(&sp.user, &sp.open, &sp.joinedAt, &sp.leftAt); err != nil {
				t.Fatal(err)
			}
			out = append(out, sp)
		}
		return out
	}
	events := func() string { t.Helper(); return jobEvents(t, pool) }

	a, b := start(), start()
	do(a, "mia", true)
	do(a, "tina", true)
	do(b, "sam", true)
	do(b, "tina", true)  // tina's tab closed on a, back on b within the grace: b takes her span
	do(a, "tina", false) // a's grace for her ran out: her span is b's now, it stays open
	if got := events(); got != "participant.joined mia, participant.joined sam, participant.joined tina" {
		t.Fatalf("events after the joins = %q, want one participant.joined each", got)
	}

	// a shuts down as the service does: its spans (mia) end, b's stay open.
	a.rec.Stop(ctx)
	if err := a.rec.CloseOwn(ctx); err != nil {
		t.Fatal(err)
	}
	a.node.Stop(ctx)
	if got := spans(); len(got) != 3 || got[0].open || !got[1].open || !got[2].open {
		t.Fatalf("spans after a's shutdown = %+v, want mia's ended, sam's and tina's open", got)
	}
	var nodes int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM presence_nodes WHERE node_id = $1", a.node.ID()).Scan(&nodes); err != nil || nodes != 0 {
		t.Fatalf("a's heartbeat rows after its shutdown = %d, %v; want 0", nodes, err)
	}

	// b is killed: its spans stay open until the next node's sweep ends them at its last
	// heartbeat.
	time.Sleep(300 * time.Millisecond) // b beats after its spans opened
	b.node.Crash()
	var lastBeat time.Time
	if err := pool.QueryRow(ctx, "SELECT seen_at FROM presence_nodes WHERE node_id = $1", b.node.ID()).Scan(&lastBeat); err != nil {
		t.Fatal(err)
	}
	if got := spans(); !got[1].open || !got[2].open {
		t.Fatalf("spans right after b's death = %+v, want sam's and tina's open", got)
	}
	time.Sleep(2100 * time.Millisecond) // past b's purge age
	start()                             // sweeps in Start
	got := spans()
	// At the last heartbeat, or at the start of a span opened after it.
	endsAt := func(sp span) bool {
		return !sp.open && sp.leftAt.Equal(lastBeat) || !sp.joinedAt.Before(lastBeat) && sp.leftAt.Equal(sp.joinedAt)
	}
	if len(got) != 3 || !endsAt(got[1]) || !endsAt(got[2]) {
		t.Fatalf("spans after the next node's start = %+v, want sam's and tina's ended at b's last heartbeat %v", got, lastBeat)
	}
	want := "participant.joined mia, participant.joined sam, participant.joined tina, participant.left mia, participant.left sam, participant.left tina"
	if got := events(); got != want {
		t.Fatalf("events = %q, want %q", got, want)
	}
	waitFor(t, 5*time.Second, "b's heartbeat row to be purged", func() bool {
		var n int
		_ = pool.QueryRow(ctx, "SELECT count(*) FROM presence_nodes WHERE node_id = $1", b.node.ID()).Scan(&n)
		return n == 0
	})
}
