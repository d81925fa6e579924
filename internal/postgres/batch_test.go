package postgres_test

import (
	"testing"
	"time"

	"github.com/m4sh/backend/internal/postgres"
)

func TestBatchSizer(t *testing.T) {
	t.Parallel()
	const target = 100 * time.Millisecond
	steps := []struct {
		name string
		rows int // -1: a full batch
		took time.Duration
		want int
	}{
		{"a slow batch halves the next", -1, 101 * time.Millisecond, 500},
		{"four times too slow: a quarter", -1, 400 * time.Millisecond, 125},
		{"at target: unchanged", -1, target, 125},
		{"a fifth faster: grows in proportion", -1, 80 * time.Millisecond, 156},
		{"twice as fast: grows by at most 1.5", -1, 50 * time.Millisecond, 234},
		{"ten times as fast: still at most 1.5", -1, 10 * time.Millisecond, 351},
		{"a short fast batch says nothing about the rate", 3, time.Millisecond, 351},
		{"a short slow batch still halves", 3, time.Second, 35},
		{"clamped to Min", -1, time.Hour, 20},
		{"stays at Min however slow", -1, time.Hour, 20},
		{"a fast batch after it grows again", -1, time.Millisecond, 30},
		{"grows", -1, time.Millisecond, 45},
		{"grows", -1, time.Millisecond, 67},
	}
	s := postgres.NewBatchSizer(1000, 20, 2000, target)
	if s.Size() != 1000 {
		t.Fatalf("initial size %d, want 1000", s.Size())
	}
	for i, st := range steps {
		rows := st.rows
		if rows < 0 {
			rows = s.Size()
		}
		s.Observe(rows, st.took)
		if got := s.Size(); got != st.want {
			t.Fatalf("step %d (%s): size %d, want %d", i, st.name, got, st.want)
		}
	}
	if got := postgres.NewBatchSizer(5, 100, 2000, target).Size(); got != 100 {
		t.Errorf("initial size below Min: %d, want 100", got)
	}
	big := postgres.NewBatchSizer(1900, 100, 2000, target)
	big.Observe(1900, time.Millisecond)
	if big.Size() != 2000 {
		t.Errorf("growing past Max: %d, want 2000", big.Size())
	}
}

// TestBatchSizerBoundsOvershoot drives the sizer with batches whose cost is quadratic in
// their size (the worst case a plan can turn into): starting small and growing by at most
// 1.5×, no batch takes more than 1.5 × 1.5 × Target, and the sizes settle near the size that
// takes Target.
func TestBatchSizerBoundsOvershoot(t *testing.T) {
	t.Parallel()
	const target = 150 * time.Millisecond
	for _, cost := range []struct {
		name string
		of   func(n int) time.Duration
	}{
		{"linear", func(n int) time.Duration { return time.Duration(n) * 10 * time.Microsecond }},
		{"quadratic", func(n int) time.Duration { return time.Duration(n*n) * 20 * time.Nanosecond }},
	} {
		s := postgres.NewBatchSizer(10, 10, 1_000_000, target)
		var longest time.Duration
		for range 100 {
			took := cost.of(s.Size())
			longest = max(longest, took)
			s.Observe(s.Size(), took)
		}
		if longest > 225*time.Millisecond {
			t.Errorf("%s: longest batch %v, want at most 1.5 × 150 ms", cost.name, longest)
		}
		if last := cost.of(s.Size()); last < target/2 || last > 225*time.Millisecond {
			t.Errorf("%s: settled at %d rows taking %v, want near %v", cost.name, s.Size(), last, target)
		}
	}
}
