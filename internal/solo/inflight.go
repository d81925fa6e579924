package solo

import (
	"fmt"
	"sync"
	"time"

	"github.com/m4sh/backend/internal/apperr"
)

// DefaultUploadsInFlight is SOLO_UPLOADS_IN_FLIGHT's default.
const DefaultUploadsInFlight = 4

// uploadRetryAfter is what a refused upload is told to wait: uploads take milliseconds once
// their body has arrived.
const uploadRetryAfter = time.Second

// inFlight counts each user's uploads in flight in this process, so that one user cannot
// hold more than max bodies in memory (README: Hostile input and load). Users without uploads take no memory.
type inFlight struct {
	max    int
	mu     sync.Mutex
	byUser map[string]int
}

func newInFlight(max int) *inFlight {
	return &inFlight{max: max, byUser: map[string]int{}}
}

// acquire takes one of userID's slots, or answers TooManyUploads; release gives it back.
func (f *inFlight) acquire(userID string) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byUser[userID] >= f.max {
		return nil, &apperr.Error{
			Kind:       apperr.TooManyUploads,
			Message:    fmt.Sprintf("at most %d uploads in flight per user; retry later", f.max),
			RetryAfter: uploadRetryAfter,
		}
	}
	f.byUser[userID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.byUser[userID]--; f.byUser[userID] <= 0 {
				delete(f.byUser, userID)
			}
		})
	}, nil
}
