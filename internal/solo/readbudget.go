package solo

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/m4sh/backend/internal/apperr"
)

// DefaultReadMemory is the default of Options.ReadMemory.
const DefaultReadMemory = 64 << 20

// readBudgetWait is how long a read waits for room in the budget before it is answered 503
// with Retry-After: long enough to ride out a burst, short enough that a flood of reads is
// refused rather than queued without end.
const readBudgetWait = 5 * time.Second

// readBudget bounds the bytes that reads hold in memory at once in this process.
// SnapshotOpen holds a whole revision until its answer is sent (so that an answer is never a
// 200 cut short), so without a bound n concurrent reads of the largest snapshot would hold n
// times its size: one user with a token could exhaust the process.
type readBudget struct {
	sem *semaphore.Weighted
	max int64
}

func newReadBudget(max int64) *readBudget {
	return &readBudget{sem: semaphore.NewWeighted(max), max: max}
}

// acquire takes n bytes of the budget (all of it when n is larger, so that any revision can
// be read), waiting at most readBudgetWait; Unavailable with Retry-After when it stays full.
func (b *readBudget) acquire(ctx context.Context, n int64) (release func(), err error) {
	n = min(max(n, 1), b.max)
	wctx, cancel := context.WithTimeout(ctx, readBudgetWait)
	defer cancel()
	if err := b.sem.Acquire(wctx, n); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &apperr.Error{Kind: apperr.Unavailable, Err: errors.Join(errReadBudget, err),
			Message: "too many snapshot reads in flight; retry later", RetryAfter: time.Second}
	}
	var once sync.Once
	return func() { once.Do(func() { b.sem.Release(n) }) }, nil
}

var errReadBudget = errors.New("snapshot read memory budget full")

// budgetedBody is a revision's bytes in memory, their budget given back on Close.
type budgetedBody struct {
	io.Reader
	release func()
}

func (b *budgetedBody) Close() error {
	b.release()
	return nil
}
