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
		{"a slow batch halves the next", -1, 300 * time.Millisecond, 500},
		{"slow again: halves again", -1, 101 * time.Millisecond, 250},
		{"at target: unchanged", -1, target, 250},
		{"twice as fast: doubles", -1, 50 * time.Millisecond, 500},
		{"a third faster: grows in proportion", -1, 80 * time.Millisecond, 625},
		{"ten times as fast: at most doubles", -1, 10 * time.Millisecond, 1250},
		{"a short fast batch says nothing about the rate", 3, time.Millisecond, 1250},
		{"a short slow batch still halves", 3, time.Second, 625},
		{"a fast batch after it doubles again", -1, time.Millisecond, 1250},
		{"grows up to Max", -1, time.Millisecond, 2000},
		{"never above Max", -1, time.Millisecond, 2000},
		{"halving from Max", -1, time.Hour, 1000},
		{"halving", -1, time.Hour, 500},
		{"halving", -1, time.Hour, 250},
		{"halving", -1, time.Hour, 125},
		{"never below Min", -1, time.Hour, 100},
		{"stays at Min however slow", -1, time.Hour, 100},
	}
	s := postgres.NewBatchSizer(1000, 100, 2000, target)
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
}
