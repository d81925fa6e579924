package ws

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestPacerAdjust walks the control law: double from paceMin while behind, up to max; hold
// in between; decay by a quarter when caught up, to zero below paceMin/2.
func TestPacerAdjust(t *testing.T) {
	const max = 25 * time.Millisecond
	behind, between, caughtUp := paceBehind+time.Millisecond, (paceBehind+paceCaughtUp)/2, paceCaughtUp/2
	steps := []struct {
		p90  time.Duration
		want time.Duration
	}{
		{caughtUp, 0},
		{between, 0},
		{behind, paceMin},
		{behind, 2 * paceMin},
		{between, 2 * paceMin},
		{behind, 4 * paceMin},
		{behind, 8 * paceMin},
		{behind, max},
		{behind, max},
		{between, max},
		{caughtUp, max * 3 / 4},
		{caughtUp, max * 9 / 16},
	}
	p := newPacer(max)
	for i, s := range steps {
		p.adjust(s.p90)
		if got := p.current(); got != s.want {
			t.Fatalf("step %d (p90 %v): pause %v, want %v", i, s.p90, got, s.want)
		}
	}
	for range 20 {
		p.adjust(caughtUp)
	}
	if got := p.current(); got != 0 {
		t.Fatalf("after a long calm: pause %v, want 0", got)
	}
}

// TestPacerWindowSeesBacklog: with one CPU and more busy goroutines than it can run, the
// window's scheduling latency is above paceBehind; a calm window is below paceCaughtUp.
func TestPacerWindowSeesBacklog(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	p := newPacer(time.Second)
	p.window()
	time.Sleep(50 * time.Millisecond)
	if calm := p.window(); calm >= paceCaughtUp {
		t.Fatalf("calm window: p90 %v, want < %v", calm, paceCaughtUp)
	}
	stop := time.Now().Add(500 * time.Millisecond)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Slices of 2 ms of work, then back to the run queue behind the seven others:
			// each wait for a CPU is ≈ 14 ms. (Relying on the runtime's 10 ms preemption
			// instead was flaky on a loaded machine, where its monitor thread runs late.)
			for time.Now().Before(stop) {
				for slice := time.Now().Add(2 * time.Millisecond); time.Now().Before(slice); {
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	if busy := p.window(); busy <= paceBehind {
		t.Fatalf("busy window: p90 %v, want > %v", busy, paceBehind)
	}
}
