// Package users records the callers the service has seen: users are created on first sight
// (there is no sign-up API) and their display name follows the newest token.
package users

import (
	"context"
	"fmt"
	"sync"

	"github.com/m4sh/backend/gen/db"
)

// Service upserts users, remembering recent sightings so that a busy user costs one write per
// name change rather than one per request.
type Service struct {
	q *db.Queries

	mu    sync.Mutex
	seen  map[string]string // user id → name last written
	limit int
}

// New returns a Service whose sighting cache holds at most cacheSize users.
func New(q *db.Queries, cacheSize int) *Service {
	return &Service{q: q, seen: make(map[string]string), limit: cacheSize}
}

// Seen records that userID (with display name) made a request.
func (s *Service) Seen(ctx context.Context, userID, name string) error {
	s.mu.Lock()
	prev, ok := s.seen[userID]
	s.mu.Unlock()
	if ok && (prev == name || name == "") {
		return nil
	}
	if err := s.q.UserUpsert(ctx, db.UserUpsertParams{ID: userID, Name: name}); err != nil {
		return fmt.Errorf("upserting user: %w", err)
	}
	s.mu.Lock()
	if len(s.seen) >= s.limit {
		// Crude but bounded: forgetting everyone only costs one idempotent upsert each.
		clear(s.seen)
	}
	s.seen[userID] = name
	s.mu.Unlock()
	return nil
}
