// Package cputime reads CPU time for benchmarks: this process's, and a PostgreSQL server's
// (the postmaster and all its children, whoever's work they do). On a shared machine a
// benchmark's wall time says little; the CPU it cost says what it competes with.
package cputime

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Process is the CPU time (user and system) this process has used.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// DataDir asks the server behind pool for its data directory (a superuser may read it).
func DataDir(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var dir string
	err := pool.QueryRow(ctx, "SHOW data_directory").Scan(&dir)
	return dir, err
}

// Server sums the CPU time of the PostgreSQL server whose data directory is dir: the
// postmaster (from postmaster.pid) and its children, live or reaped, in clock ticks of
// 10 ms (Linux reports /proc times in USER_HZ, 100 a second). 0 when the server is not on
// this machine.
func Server(dir string) time.Duration {
	if dir == "" {
		return 0
	}
	pidFile, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	master := strings.SplitN(string(pidFile), "\n", 2)[0]
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		// Fields after the command (which may hold spaces) in parentheses.
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		if pid != master && f[1] != master { // f[1]: the parent's pid
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
		if pid == master && len(f) >= 15 {
			// Backends that have exited: the postmaster has reaped them, and their time is
			// its children's (cutime, cstime), so a backend that ends between two readings
			// still counts.
			cut, _ := strconv.ParseInt(f[13], 10, 64)
			cst, _ := strconv.ParseInt(f[14], 10, 64)
			ticks += cut + cst
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
