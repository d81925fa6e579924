package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/jobs"
)

type tickArgs struct{}

func (tickArgs) Kind() string { return "test.tick" }

type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	node string
	mu   *sync.Mutex
	runs map[int64]string // job id → node that worked it
}

func (w *tickWorker) Work(_ context.Context, j *river.Job[tickArgs]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev, dup := w.runs[j.ID]; dup {
		w.runs[-j.ID] = prev + "+" + w.node // recorded as a failure below
	}
	w.runs[j.ID] = w.node
	return nil
}

// TestPeriodicJobOncePerTickAcrossNodes starts two River clients on one database, as two
// nodes do, with a periodic job every second: River's elected leader alone enqueues
// periodic jobs, so each tick yields one job, worked once by either node.
func TestPeriodicJobOncePerTickAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	var mu sync.Mutex
	runs := map[int64]string{}
	var clients []*jobs.Client
	for _, name := range []string{"a", "b"} {
		c, err := jobs.New(dbtest.Pool(t, url), jobs.Config{Work: []jobs.Work{{
			Workers: []jobs.Worker{jobs.NewWorker(&tickWorker{node: name, mu: &mu, runs: runs})},
			Periodic: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Second),
				func() (river.JobArgs, *river.InsertOpts) { return tickArgs{}, nil }, nil)},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	const want = 5
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(runs)
		mu.Unlock()
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d periodic runs within 60s, want %d", n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range clients {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := c.Stop(sctx); err != nil {
			t.Error(err)
		}
		cancel()
	}

	pool := dbtest.Pool(t, url)
	rows, err := pool.Query(ctx, "SELECT id, created_at FROM river_job WHERE kind = 'test.tick' ORDER BY created_at")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var prev time.Time
	jobsSeen := 0
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		if jobsSeen > 0 && at.Sub(prev) < 500*time.Millisecond {
			t.Errorf("job %d inserted %v after the previous one: two jobs for one tick", id, at.Sub(prev))
		}
		prev = at
		jobsSeen++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, node := range runs {
		if id < 0 {
			t.Errorf("job %d worked twice: %s", -id, node)
		}
	}
	if jobsSeen < want {
		t.Errorf("%d jobs inserted, want at least %d", jobsSeen, want)
	}
	t.Logf("%d ticks, worked by %v", jobsSeen, runs)
}
