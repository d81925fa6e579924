package cputime_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/cputime"
)

// TestProcessCountsWork: hashing for 50 ms of CPU shows in Process; Server of no directory,
// or of one without a running server, is 0.
func TestProcessCountsWork(t *testing.T) {
	before := cputime.Process()
	var sum [32]byte
	for spent := cputime.Process() - before; spent < 50*time.Millisecond; spent = cputime.Process() - before {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	if d := cputime.Process() - before; d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("Process grew by %s, want at least the 50 ms spent", d)
	}
	if d := cputime.Server(""); d != 0 {
		t.Errorf("Server(\"\") = %s", d)
	}
	if d := cputime.Server(t.TempDir()); d != 0 {
		t.Errorf("Server(an empty directory) = %s", d)
	}
}
