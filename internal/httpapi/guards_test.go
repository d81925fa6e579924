package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apperr"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestWriteThrottle(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := newWriteThrottle(3, 100, clock.now)
	for i := range 3 {
		if ok, _ := th.allow("alice"); !ok {
			t.Fatalf("creation %d of 3 refused", i+1)
		}
		clock.add(10 * time.Second)
	}
	ok, wait := th.allow("alice")
	if ok {
		t.Fatal("4th creation within a minute allowed")
	}
	// The window started 30 s ago: the earliest allowance is when it ends and its count
	// starts to weigh less.
	if wait < 30*time.Second || wait > 51*time.Second {
		t.Errorf("wait = %v, want between 30s and 51s", wait)
	}
	if ok, _ := th.allow("bob"); !ok {
		t.Error("another user throttled")
	}
	clock.add(wait)
	if ok, _ := th.allow("alice"); !ok {
		t.Errorf("refused again after waiting the advertised %v", wait)
	}
	clock.add(3 * time.Minute)
	for i := range 3 {
		if ok, _ := th.allow("alice"); !ok {
			t.Fatalf("after a quiet spell, creation %d of 3 refused", i+1)
		}
	}
}

func TestWriteThrottleMemoryIsBounded(t *testing.T) {
	t.Parallel()
	th := newWriteThrottle(3, 64, nil)
	for i := range 10_000 {
		th.allow(strings.Repeat("u", i%200) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	if n := len(th.users); n > 64 {
		t.Errorf("throttle holds %d users, want at most 64", n)
	}
}

// countingChecks counts rounds and lets a test hold a round open.
type countingChecks struct {
	rounds  atomic.Int32
	running atomic.Int32
	maxRun  atomic.Int32
	release chan struct{}
	err     error
}

func (c *countingChecks) Ready(ctx context.Context) map[string]error {
	c.rounds.Add(1)
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for {
		m := c.maxRun.Load()
		if n <= m || c.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	if c.release != nil {
		<-c.release
	}
	return map[string]error{"database": c.err}
}

func TestReadinessIsCachedAndSingleFlight(t *testing.T) {
	t.Parallel()
	checks := &countingChecks{release: make(chan struct{})}
	clock := &fakeClock{t: time.Now()}
	c := newCachedReadiness(checks, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.now = clock.now
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if r := c.Ready(context.Background()); r["database"] != nil {
				t.Errorf("Ready = %v", r)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let every caller arrive while the round is held
	close(checks.release)
	wg.Wait()
	if n := checks.rounds.Load(); n != 1 {
		t.Errorf("100 concurrent callers ran %d rounds, want 1", n)
	}
	clock.add(900 * time.Millisecond)
	c.Ready(context.Background())
	if n := checks.rounds.Load(); n != 1 {
		t.Errorf("a caller within 1 s ran a new round (%d rounds)", n)
	}
	clock.add(200 * time.Millisecond)
	c.Ready(context.Background())
	if n := checks.rounds.Load(); n != 2 {
		t.Errorf("a caller after 1.1 s got a stale result (%d rounds, want 2)", n)
	}
	if m := checks.maxRun.Load(); m != 1 {
		t.Errorf("%d rounds ran at once, want 1", m)
	}
}

func TestReadinessWaiterGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	checks := &countingChecks{release: make(chan struct{})}
	c := newCachedReadiness(checks, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	r := c.Ready(ctx)
	if !errors.Is(r["readiness"], context.DeadlineExceeded) {
		t.Errorf("Ready with an expired context = %v, want readiness: deadline exceeded", r)
	}
	close(checks.release)
}

func TestCheckStrictJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{`{"title":"x"}`, true},
		{" {\"title\":\"x\"} \n", true},
		{`{"title":"\\u0000"}`, true}, // an escaped backslash, then text
		{`{"title":"\u0001"}`, true},
		{`["\"\\"]`, true},
		{`{"title":"x"}xyz`, false},
		{`{"title":"x"} {}`, false},
		{`{"title":"x"}}`, false},
		{`{"title":"a\u0000b"}`, false},
		{`{"ti\u0000tle":"x"}`, false},
		{`["\\\u0000"]`, false},
		{`{"title":`, false},
		{``, false},
		{"{\"title\":\"a\x00b\"}", false},
	}
	for _, tt := range tests {
		err := checkStrictJSON([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("checkStrictJSON(%q) = %v, want ok %v", tt.in, err, tt.ok)
		}
		if err != nil && !apperr.Is(err, apperr.Invalid) {
			t.Errorf("checkStrictJSON(%q) = %v, want a validation error", tt.in, err)
		}
	}
}

// FuzzStrictJSON holds checkStrictJSON to the plain reference: decode the whole input as
// exactly one value and walk it for a string holding U+0000.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{"title":"x"}`, `{"title":"x"}xyz`, `{"a":"\u0000"}`, `["\\u0000"]`, `{"user_id":"\u202e"}`, `1 2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := checkStrictJSON(b) == nil
		if want := referenceStrictJSON(b); got != want {
			t.Errorf("checkStrictJSON(%q) ok = %v, reference says %v", b, got, want)
		}
	})
}

func referenceStrictJSON(b []byte) bool {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var v any
	if err := dec.Decode(&v); err != nil {
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false
	}
	if !json.Valid(b) { // the decoder replaces invalid UTF-8; Valid refuses nothing else
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case string:
			return !strings.ContainsRune(x, 0)
		case []any:
			for _, e := range x {
				if !walk(e) {
					return false
				}
			}
		case map[string]any:
			for k, e := range x {
				if strings.ContainsRune(k, 0) || !walk(e) {
					return false
				}
			}
		}
		return true
	}
	return walk(v)
}
