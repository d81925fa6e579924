package ws

import (
	"context"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// pacer decides how long a connection's writer pauses after a write before it sends again.
//
// A write to a socket costs the same system call whether it carries one cursor update or
// twenty, and on a busy room it is most of what a delivery costs. While the process keeps
// up, writers send at once (lowest latency). When it falls behind — goroutines wait to run —
// writers pause between writes, so that a connection's updates coalesce into fewer, larger
// frames (latest position per sender, as the contract allows) and the process catches up,
// instead of the backlog coalescing the same updates anyway after a longer, unbounded wait.
//
// "Behind" is read from the Go scheduler itself (runtime/metrics /sched/latencies: how long
// runnable goroutines waited for a CPU), so the same setting works on any machine. The pause
// doubles while the process is behind, up to max, and decays when it is not.
type pacer struct {
	max  time.Duration
	pace atomic.Int64 // current pause in ns; 0 = send at once

	samples []metrics.Sample
	prev    []uint64 // previous cumulative bucket counts
}

const (
	pacerTick = 100 * time.Millisecond
	// A window whose 90th percentile scheduling latency is above paceBehind means the
	// process is behind; below paceCaughtUp it has caught up. In between the pause holds.
	// On the 2-core machine of BENCHMARKS.md the 90th percentile stays under 2 ms up to 25
	// rooms × 20 users at 20 Hz and goes to 1–6 ms at 40 × 20 and beyond.
	paceBehind   = 4 * time.Millisecond
	paceCaughtUp = 1 * time.Millisecond
	paceMin      = 2 * time.Millisecond
)

const schedLatencies = "/sched/latencies:seconds"

func newPacer(max time.Duration) *pacer {
	return &pacer{max: max, samples: []metrics.Sample{{Name: schedLatencies}}}
}

// current is the pause after a write.
func (p *pacer) current() time.Duration {
	return time.Duration(p.pace.Load())
}

// run adjusts the pause every pacerTick until ctx ends. With max 0 pacing is off.
func (p *pacer) run(ctx context.Context, observe func(time.Duration)) {
	if p.max <= 0 {
		return
	}
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	p.window() // start counting from now
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.adjust(p.window())
			if observe != nil {
				observe(p.current())
			}
		}
	}
}

// adjust moves the pause for a window whose 90th percentile scheduling latency was p90.
func (p *pacer) adjust(p90 time.Duration) {
	cur := p.current()
	next := cur
	switch {
	case p90 > paceBehind:
		next = min(max(2*cur, paceMin), p.max)
	case p90 < paceCaughtUp:
		if next = cur * 3 / 4; next < paceMin/2 {
			next = 0
		}
	}
	p.pace.Store(int64(next))
}

// window returns the 90th percentile scheduling latency since the previous call.
func (p *pacer) window() time.Duration {
	metrics.Read(p.samples)
	if p.samples[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0 // not provided by this runtime: never pace
	}
	h := p.samples[0].Value.Float64Histogram()
	if len(p.prev) != len(h.Counts) {
		p.prev = make([]uint64, len(h.Counts))
	}
	var total uint64
	for i, c := range h.Counts {
		total += c - p.prev[i]
	}
	var p90 time.Duration
	if total > 0 {
		want := total - total/10
		var seen uint64
		for i, c := range h.Counts {
			seen += c - p.prev[i]
			if seen >= want {
				// Bucket i spans Buckets[i]..Buckets[i+1]; take its lower bound (the first
				// bucket's is -Inf).
				p90 = time.Duration(max(h.Buckets[i], 0) * float64(time.Second))
				break
			}
		}
	}
	copy(p.prev, h.Counts)
	return p90
}
