package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/m4sh/backend/internal/cluster"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/presence"
)

// counter reads a collector of one counter.
func counter(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestPurgeMetrics: the surviving node counts the dead node's presence rows it purged; a node
// whose own row was purged counts finding out.
func TestPurgeMetrics(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	left := &departures{}
	ctx := context.Background()
	o := cluster.Options{HeartbeatInterval: 300 * time.Millisecond, PurgeAfter: 900 * time.Millisecond, OnDeparted: left.add}
	a, b := cluster.New(dbtest.Pool(t, url), o), cluster.New(dbtest.Pool(t, url), o)
	a.Start(ctx)
	b.Start(ctx)
	t.Cleanup(func() { a.Stop(context.Background()) })
	s := uuid.New()
	b.Arrive(ctx, s, presence.User{UserID: "sam", Name: "Sam", Role: "student"}, 1, presence.Caps{})
	b.Arrive(ctx, s, presence.User{UserID: "tina", Name: "Tina", Role: "tutor"}, 1, presence.Caps{})
	b.Crash()
	deadline := time.Now().Add(30 * time.Second)
	for len(left.get()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("departures = %v after 30s, want sam and tina", left.get())
		}
		time.Sleep(50 * time.Millisecond)
	}
	purged, self := a.Collectors()[0], a.Collectors()[1]
	if got := counter(t, purged); got != 2 {
		t.Errorf("a's m4sh_cluster_presence_purged_total = %v, want 2", got)
	}
	if got := counter(t, self); got != 0 {
		t.Errorf("a's m4sh_cluster_self_purged_total = %v before being purged, want 0", got)
	}
	// What the other nodes' sweep does to a node silent for PurgeAfter.
	if _, err := dbtest.Pool(t, url).Exec(ctx, "DELETE FROM presence_nodes WHERE node_id = $1", a.ID()); err != nil {
		t.Fatal(err)
	}
	for counter(t, self) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a's m4sh_cluster_self_purged_total not 1 after its row was purged")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
