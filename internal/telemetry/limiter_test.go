package telemetry_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/telemetry"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(limit, maxClients int) (*telemetry.Limiter, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return telemetry.NewLimiter(telemetry.LimiterOptions{Limit: limit, Window: time.Minute, MaxClients: maxClients, Now: clk.Now}), clk
}

var (
	alice = netip.MustParseAddr("192.0.2.1")
	bob   = netip.MustParseAddr("192.0.2.2")
)

func TestLimiterFirstWindowIsExact(t *testing.T) {
	t.Parallel()
	l, clk := newLimiter(300, 1000)
	for i := 1; i <= 300; i++ {
		if ok, _ := l.Allow(alice); !ok {
			t.Fatalf("request %d refused, want allowed", i)
		}
		clk.Add(150 * time.Millisecond) // 300 requests over 45 s
	}
	ok, wait := l.Allow(alice)
	if ok {
		t.Fatal("request 301 within a minute allowed, want refused")
	}
	// The window started 45 s ago: it ends in 15 s, and then 1/300 of it must slide out.
	if want := 15*time.Second + 200*time.Millisecond; wait != want {
		t.Errorf("retry after %v, want %v", wait, want)
	}
	if ok, _ := l.Allow(bob); !ok {
		t.Error("another client refused")
	}
	clk.Add(wait - time.Millisecond)
	if ok, _ := l.Allow(alice); ok {
		t.Error("allowed before Retry-After passed")
	}
	clk.Add(time.Millisecond)
	if ok, _ := l.Allow(alice); !ok {
		t.Error("refused once Retry-After passed")
	}
}

func TestLimiterSlidesAndForgives(t *testing.T) {
	t.Parallel()
	l, clk := newLimiter(10, 1000)
	for range 10 {
		l.Allow(alice)
	}
	// Refused requests are not counted: hammering does not extend the penalty.
	for range 100 {
		if ok, _ := l.Allow(alice); ok {
			t.Fatal("allowed over the limit")
		}
	}
	// Half way through the next window half of the previous one still weighs: 5 of 10.
	clk.Add(90 * time.Second)
	allowed := 0
	for range 10 {
		if ok, _ := l.Allow(alice); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("%d allowed half way through the next window, want 5", allowed)
	}
	// Two idle windows later the client is as new.
	clk.Add(2 * time.Minute)
	allowed = 0
	for range 11 {
		if ok, _ := l.Allow(alice); ok {
			allowed++
		}
	}
	if allowed != 10 {
		t.Errorf("%d allowed after two idle minutes, want 10", allowed)
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	t.Parallel()
	const maxClients = 64 * 100
	l, clk := newLimiter(5, maxClients)
	addr := func(i int) netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	for i := range 200_000 {
		l.Allow(addr(i))
	}
	if n := l.Len(); n > maxClients {
		t.Fatalf("limiter holds %d clients after 200,000 distinct ones, want at most %d", n, maxClients)
	}
	// Entries expire: after two idle windows, new clients sweep the old ones out.
	clk.Add(2*time.Minute + time.Second)
	for i := range 64 * 10 {
		l.Allow(addr(1_000_000 + i))
	}
	if n := l.Len(); n > 64*10 {
		t.Errorf("limiter holds %d clients after the old ones expired, want at most %d", n, 64*10)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(1000, 1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 500 {
				if ok, _ := l.Allow(alice); ok {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if allowed != 1000 {
		t.Errorf("%d of 4000 concurrent requests allowed, want exactly 1000", allowed)
	}
}
