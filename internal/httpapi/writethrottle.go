package httpapi

import (
	"sync"
	"time"
)

// writeThrottleExt marks operations that create a resource: each user may call them at most
// API_WRITE_RATE_PER_MIN times a minute, together (README: Hostile input and load).
const writeThrottleExt = "x-m4sh-write-throttled"

// writeThrottle counts each user's creations in a sliding one-minute window: the current
// minute's count plus the previous minute's, weighted by how much of it still overlaps the
// last 60 s. A user's first minute is exact (the limit+1st creation within a minute of the
// first is refused); afterwards bursts at window edges are smoothed rather than doubled.
// Refusals are not counted. It is per process: with N nodes a user spread over all of them
// may create up to N × the limit (see README).
//
// Memory is bounded: at most maxUsers entries; when full, entries idle for two windows are
// dropped, and if none is, the map is emptied — forgetting counts only lets users create a
// little more for one minute, never less.
type writeThrottle struct {
	limit    int
	window   time.Duration
	maxUsers int
	now      func() time.Time

	mu    sync.Mutex
	users map[string]userWindow
}

type userWindow struct {
	start     time.Time // start of the current window
	prev, cur int
}

func newWriteThrottle(limitPerMin, maxUsers int, now func() time.Time) *writeThrottle {
	if now == nil {
		now = time.Now
	}
	return &writeThrottle{limit: limitPerMin, window: time.Minute, maxUsers: maxUsers, now: now,
		users: make(map[string]userWindow)}
}

// allow counts one creation by user; when over the limit it counts nothing and says how
// long until one would be allowed.
func (t *writeThrottle) allow(user string) (bool, time.Duration) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.users[user]
	if !ok {
		if len(t.users) >= t.maxUsers {
			t.makeRoom(now)
		}
		w = userWindow{start: now}
	}
	w = t.advance(w, now)
	if t.estimate(w, now) >= float64(t.limit) {
		t.users[user] = w
		return false, t.wait(w, now)
	}
	w.cur++
	t.users[user] = w
	return true, 0
}

func (t *writeThrottle) advance(w userWindow, now time.Time) userWindow {
	switch e := now.Sub(w.start); {
	case e >= 2*t.window:
		return userWindow{start: now}
	case e >= t.window:
		return userWindow{start: w.start.Add(t.window), prev: w.cur}
	}
	return w
}

func (t *writeThrottle) estimate(w userWindow, now time.Time) float64 {
	left := 1 - float64(now.Sub(w.start))/float64(t.window)
	return float64(w.prev)*left + float64(w.cur)
}

// wait is how long until the estimate drops under the limit if nothing else is counted.
func (t *writeThrottle) wait(w userWindow, now time.Time) time.Duration {
	end := w.start.Add(t.window)
	if w.cur < t.limit && w.prev > 0 {
		// prev × left + cur < limit  ⇔  left < (limit − cur) / prev
		at := end.Add(-time.Duration(float64(t.window) * float64(t.limit-w.cur) / float64(w.prev)))
		if d := at.Sub(now); d > 0 {
			return d
		}
		return time.Millisecond
	}
	// The current window is full: after it ends its count weighs less and less.
	at := end.Add(time.Duration(float64(t.window) * float64(w.cur-t.limit+1) / float64(w.cur)))
	return at.Sub(now)
}

func (t *writeThrottle) makeRoom(now time.Time) {
	for u, w := range t.users {
		if now.Sub(w.start) >= 2*t.window {
			delete(t.users, u)
		}
	}
	if len(t.users) >= t.maxUsers {
		clear(t.users)
	}
}
