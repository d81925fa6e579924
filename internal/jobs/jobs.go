// Package jobs runs River: the client, and the one way features hand it background work.
// Each feature returns a Work (its workers and periodic jobs); New counts and registers them.
// Features enqueue through the client inside their own transactions (River as the outbox).
package jobs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Work is one feature's background work: its River workers and periodic jobs.
type Work struct {
	Workers  []Worker
	Periodic []*river.PeriodicJob
	// Queues are the feature's own queues beside the default one, so that its jobs (a slow
	// webhook receiver, say) never hold up another feature's.
	Queues map[string]river.QueueConfig
}

// Worker adds one River worker to a worker set; build it with NewWorker.
type Worker func(*river.Workers) error

// NewWorker wraps a River worker so that a feature can list it in its Work.
func NewWorker[T river.JobArgs](w river.Worker[T]) Worker {
	return func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) }
}

// Config configures the River client.
type Config struct {
	Log        *slog.Logger
	MaxWorkers int
	// Work is every feature's background work. With no workers at all the client only
	// inserts jobs and is not started (operator commands that enqueue nothing themselves).
	Work []Work
	// Middleware is added after the work metrics (the tracing middleware).
	Middleware []rivertype.Middleware
}

// Client is the River client with our start/stop conventions.
type Client struct {
	*river.Client[pgx.Tx]
	working bool
	work    *workMetrics
}

// New builds a River client over pool with every worker and periodic job of c.Work.
func New(pool *pgxpool.Pool, c Config) (*Client, error) {
	work := newWorkMetrics()
	rc := &river.Config{Logger: c.Log, Middleware: append([]rivertype.Middleware{work}, c.Middleware...)}
	workers := river.NewWorkers()
	count := 0
	var periodic []*river.PeriodicJob
	queues := map[string]river.QueueConfig{}
	for _, w := range c.Work {
		for name, q := range w.Queues {
			if _, dup := queues[name]; dup || name == river.QueueDefault {
				return nil, fmt.Errorf("river queue %q configured twice", name)
			}
			queues[name] = q
		}
		for _, add := range w.Workers {
			if err := add(workers); err != nil {
				return nil, fmt.Errorf("river workers: %w", err)
			}
			count++
		}
		periodic = append(periodic, w.Periodic...)
	}
	working := count > 0
	if working {
		if c.MaxWorkers <= 0 {
			c.MaxWorkers = 10
		}
		rc.Workers = workers
		// Rolling deploys: a node fetches only the kinds it has workers for, so a job of a
		// kind that only a newer binary knows waits for a node that does, instead of failing
		// attempts on older nodes (README: Rolling deploys and job arguments).
		rc.FetchOnlyKnownKinds = true
		queues[river.QueueDefault] = river.QueueConfig{MaxWorkers: c.MaxWorkers}
		rc.Queues = queues
		rc.PeriodicJobs = periodic
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return &Client{Client: client, working: working, work: work}, nil
}

// Start starts working jobs, when there are workers.
func (c *Client) Start(ctx context.Context) error {
	if !c.working {
		return nil
	}
	return c.Client.Start(ctx)
}

// Stop stops fetching new jobs and waits for running ones until ctx ends.
func (c *Client) Stop(ctx context.Context) error {
	if !c.working {
		return nil
	}
	return c.Client.Stop(ctx)
}
