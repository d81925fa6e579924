package solo

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// JobReader is the part of a River client Await needs.
type JobReader interface {
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
}

// Await polls until job id has completed and then until no blob deletion is queued or
// running, so that what the job freed is really gone. A job that ends in any other final
// state is an error; ctx bounds the wait.
func Await(ctx context.Context, c JobReader, id int64, poll time.Duration) (*rivertype.JobRow, error) {
	for {
		job, err := c.JobGet(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading job %d: %w", id, err)
		}
		if job.FinalizedAt != nil {
			if job.State != rivertype.JobStateCompleted {
				return nil, fmt.Errorf("job %d (%s) ended %s: %v", id, job.Kind, job.State, job.Errors)
			}
			return job, AwaitBlobDeletes(ctx, c, poll)
		}
		if err := sleep(ctx, poll); err != nil {
			return nil, fmt.Errorf("waiting for job %d (%s): %w", id, job.State, err)
		}
	}
}

// AwaitBlobDeletes polls until no blob deletion is queued or running.
func AwaitBlobDeletes(ctx context.Context, c JobReader, poll time.Duration) error {
	params := river.NewJobListParams().Kinds(KindDeleteBlob).First(1).States(
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled)
	for {
		res, err := c.JobList(ctx, params)
		if err != nil {
			return fmt.Errorf("listing blob deletions: %w", err)
		}
		if len(res.Jobs) == 0 {
			return nil
		}
		if err := sleep(ctx, poll); err != nil {
			return fmt.Errorf("waiting for blob deletions: %w", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
