package postgres

import "time"

// BatchSizer sizes the batches of a backfill by time rather than by count: each batch is
// sized from how long the last one took, so that a batch's transaction (and the row locks it
// holds) stays near Target whatever the server's speed — a durable cluster after a checkpoint
// is several times slower per row than a test cluster with fsync off.
//
// A batch slower than Target shrinks the next one in proportion, and at least by half. A
// faster one grows the next in proportion, by at most MaxGrowth: a batch whose cost is
// worse than linear in its size (a plan that turns quadratic, a cache that stops fitting)
// then takes at most MaxGrowth × Target, where unbounded doubling could overshoot by 4×.
// The first batch should be small (Min or so): nothing is known of the rate yet, and growing
// from small costs a few short batches while starting large risks one long one. Sizes stay
// within [Min, Max]. A batch that found fewer rows than it was allowed says nothing about the
// rate, except when it was slow, so it never grows the next one.
type BatchSizer struct {
	Target    time.Duration
	Min, Max  int
	MaxGrowth float64 // 1.5 when zero
	size      int
}

// NewBatchSizer starts at initial rows per batch (clamped to [min, max]).
func NewBatchSizer(initial, min, max int, target time.Duration) *BatchSizer {
	return &BatchSizer{Target: target, Min: min, Max: max, size: min2max(initial, min, max)}
}

// Size is how many rows the next batch may take.
func (s *BatchSizer) Size() int { return s.size }

// Observe records that the last batch changed rows rows (of Size allowed) in took.
func (s *BatchSizer) Observe(rows int, took time.Duration) {
	ratio := float64(s.Target) / float64(took)
	switch {
	case took > s.Target:
		s.size = min2max(int(float64(s.size)*min(0.5, ratio)), s.Min, s.Max)
	case rows < s.size || took <= 0:
		// A short batch (the end of the table, rows already done) measures nothing.
	default:
		grow := s.MaxGrowth
		if grow <= 1 {
			grow = 1.5
		}
		s.size = min2max(int(float64(s.size)*min(grow, ratio)), s.Min, s.Max)
	}
}

func min2max(n, lo, hi int) int { return max(lo, min(hi, n)) }
