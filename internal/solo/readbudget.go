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
// One user's reads may hold a quarter of it (any one read at least), so that a user who
// opens reads and never takes the answers cannot keep everyone else's waiting.
type readBudget struct {
	sem *semaphore.Weighted
	max int64

	mu     sync.Mutex
	byUser map[string]int64
}

func newReadBudget(max int64) *readBudget {
	return &readBudget{sem: semaphore.NewWeighted(max), max: max, byUser: map[string]int64{}}
}

// acquire takes n bytes of the budget for userID (all of it when n is larger, so that any
// revision can be read), waiting at most readBudgetWait; Unavailable with Retry-After when it
// stays full, or at once when the user already holds their share.
func (b *readBudget) acquire(ctx context.Context, userID string, n int64) (release func(), err error) {
	n = min(max(n, 1), b.max)
	b.mu.Lock()
	held := b.byUser[userID]
	if held > 0 && held+n > b.max/4 {
		b.mu.Unlock()
		return nil, budgetFull(errReadShare)
	}
	b.byUser[userID] = held + n
	b.mu.Unlock()
	unshare := func() {
		b.mu.Lock()
		if b.byUser[userID] -= n; b.byUser[userID] <= 0 {
			delete(b.byUser, userID)
		}
		b.mu.Unlock()
	}
	wctx, cancel := context.WithTimeout(ctx, readBudgetWait)
	defer cancel()
	if err := b.sem.Acquire(wctx, n); err != nil {
		unshare()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, budgetFull(errors.Join(errReadBudget, err))
	}
	var once sync.Once
	return func() { once.Do(func() { b.sem.Release(n); unshare() }) }, nil
}

func budgetFull(err error) error {
	return &apperr.Error{Kind: apperr.Unavailable, Err: err,
		Message: "too many snapshot reads in flight; retry later", RetryAfter: time.Second}
}

var errReadShare = errors.New("the user's snapshot reads hold their share of the read memory budget")

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
