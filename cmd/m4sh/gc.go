package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/m4sh/backend/internal/app"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/solo"
)

// gc runs a retention job to completion through River — the same job the periodic schedule
// inserts — waits for the blob deletions it queued, and prints the job's JSON summary.
func gc(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "snapshots" && args[0] != "reconcile") {
		return errors.New("gc: want `gc snapshots [-keep-last N] [-session ID]` or `gc reconcile`")
	}
	fs := flag.NewFlagSet("gc "+args[0], flag.ContinueOnError)
	keepLast := fs.Int("keep-last", 0, "revisions to keep per session (default SOLO_SNAPSHOT_RETENTION_KEEP_LAST)")
	session := fs.String("session", "", "only this solo session")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var jobArgs river.JobArgs = solo.ReconcileArgs{}
	if args[0] == "snapshots" {
		ca := solo.CleanupArgs{}
		if isSet(fs, "keep-last") {
			ca.KeepLast = keepLast
		}
		if *session != "" {
			id, err := uuid.Parse(*session)
			if err != nil {
				return fmt.Errorf("gc snapshots: -session: %w", err)
			}
			ca.SessionID = &id
		}
		if err := ca.Validate(); err != nil {
			return fmt.Errorf("gc snapshots: -keep-last must be at least 1, got %d", *keepLast)
		}
		jobArgs = ca
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	a, err := app.NewCore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	// The enqueue (and, through the job's metadata, the work) belongs to this trace.
	ctx, span := a.Tracing.Tracer().Start(ctx, "m4sh gc "+args[0])
	defer span.End()
	if err := a.River.Start(ctx); err != nil {
		return fmt.Errorf("starting river: %w", err)
	}
	defer func() {
		sctx, c := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer c()
		_ = a.River.Stop(sctx)
	}()
	res, err := a.River.Insert(ctx, jobArgs, nil)
	if err != nil {
		return fmt.Errorf("gc: enqueueing: %w", err)
	}
	job, err := solo.Await(ctx, a.River.Client, res.Job.ID, 100*time.Millisecond)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	var out json.RawMessage = job.Output()
	if len(out) == 0 {
		out = json.RawMessage("{}")
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
