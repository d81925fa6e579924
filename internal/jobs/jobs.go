// Package jobs wires River: the client, its workers and the periodic schedule. Features
// enqueue through the client inside their own transactions (River as the outbox).
package jobs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Config configures the River client.
type Config struct {
	Log          *slog.Logger
	MaxWorkers   int
	Workers      *river.Workers
	PeriodicJobs []*river.PeriodicJob
	// WorkerCount is how many workers were added to Workers; with none the client only
	// inserts jobs and is not started.
	WorkerCount int
}

// Client is the River client with our start/stop conventions.
type Client struct {
	*river.Client[pgx.Tx]
	working bool
}

// New builds a River client over pool.
func New(pool *pgxpool.Pool, c Config) (*Client, error) {
	rc := &river.Config{Logger: c.Log}
	working := c.Workers != nil && c.WorkerCount > 0
	if working {
		if c.MaxWorkers <= 0 {
			c.MaxWorkers = 10
		}
		rc.Workers = c.Workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: c.MaxWorkers}}
		rc.PeriodicJobs = c.PeriodicJobs
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return &Client{Client: client, working: working}, nil
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
