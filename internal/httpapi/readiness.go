package httpapi

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// readinessMaxAge is how old a readiness result /readyz may answer from (README: Hostile input and load).
const readinessMaxAge = time.Second

// readinessTimeout bounds one round of checks.
const readinessTimeout = 2 * time.Second

// cachedReadiness answers /readyz from a result at most maxAge old, computed by one round of
// checks at a time: requests arriving while a round runs wait for its result instead of
// starting their own. A flood of /readyz therefore costs the dependencies one round per
// maxAge, whatever its size. A round runs detached from the request that started it (a
// client going away does not fail the others' answer) under its own timeout.
type cachedReadiness struct {
	checks Readiness
	maxAge time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu     sync.Mutex
	at     time.Time // when the cached result was computed
	result map[string]error
	flight chan struct{} // non-nil while a round runs; closed when it ends
}

func newCachedReadiness(checks Readiness, maxAge time.Duration, log *slog.Logger) *cachedReadiness {
	return &cachedReadiness{checks: checks, maxAge: maxAge, now: time.Now, log: log}
}

// Ready returns a result at most maxAge old.
func (c *cachedReadiness) Ready(ctx context.Context) map[string]error {
	c.mu.Lock()
	if c.result != nil && c.now().Sub(c.at) <= c.maxAge {
		r := c.result
		c.mu.Unlock()
		return r
	}
	flight := c.flight
	if flight == nil {
		flight = make(chan struct{})
		c.flight = flight
		go c.round(context.WithoutCancel(ctx), flight)
	}
	c.mu.Unlock()
	select {
	case <-flight:
	case <-ctx.Done():
		return map[string]error{"readiness": ctx.Err()}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result
}

func (c *cachedReadiness) round(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	r := c.checks.Ready(ctx)
	for name, err := range r {
		if err != nil {
			c.log.WarnContext(ctx, "readiness check failed", "check", name, "err", err)
		}
	}
	c.mu.Lock()
	// Stamped when the round ended: results reflect the dependencies at that moment at the
	// earliest, so a slow round is not served past maxAge after it finished.
	c.result, c.at, c.flight = r, c.now(), nil
	c.mu.Unlock()
	close(done)
}
