package attendance_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/webhooktest"
)

// cpuMeter measures the CPU time a benchmark costs on this machine, split between this
// process (joins, the attendance writer, River's fetching and completing, the HTTP
// deliveries and the loopback receiver) and the PostgreSQL server (every process of the
// cluster, found from its postmaster.pid: the benchmark's connections and others'). On a
// shared 2-core machine it tells what the joins compete with, where wall time cannot.
type cpuMeter struct {
	pgDir              string
	recv               *webhooktest.Receiver
	proc, server, rcpu time.Duration
}

// newCPUMeter finds the server's data directory (the test connects as a superuser); with
// none, only this process is measured. A webhook receiver in a child process is measured
// apart (recv-cpu-µs/op).
func newCPUMeter(b *testing.B, pool *pgxpool.Pool, recv *webhooktest.Receiver) *cpuMeter {
	var dir string
	if err := pool.QueryRow(context.Background(), "SHOW data_directory").Scan(&dir); err != nil {
		b.Logf("no server CPU: %v", err)
	}
	return &cpuMeter{pgDir: dir, recv: recv}
}

func (m *cpuMeter) start() {
	m.proc, m.server, m.rcpu = processCPU(), m.serverCPU(), m.recvCPU()
}

func (m *cpuMeter) recvCPU() time.Duration {
	_, cpu := m.recv.Stats()
	return cpu
}

// report adds go-cpu-µs/op, pg-cpu-µs/op and (receiver in a child process)
// recv-cpu-µs/op to b's results.
func (m *cpuMeter) report(b *testing.B) {
	proc, server, recv := processCPU()-m.proc, m.serverCPU()-m.server, m.recvCPU()-m.rcpu
	b.ReportMetric(float64(proc.Microseconds())/float64(b.N), "go-cpu-µs/op")
	if m.pgDir != "" {
		b.ReportMetric(float64(server.Microseconds())/float64(b.N), "pg-cpu-µs/op")
	}
	if m.recv.Mode == webhooktest.ModeProcess {
		b.ReportMetric(float64(recv.Microseconds())/float64(b.N), "recv-cpu-µs/op")
	}
}

// waitDelivered waits until no webhook is waiting or being delivered, so that the CPU the
// deliveries of a variant's events cost is counted in that variant (wall time stops first:
// joins do not wait for deliveries).
func waitDelivered(b *testing.B, pool *pgxpool.Pool) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n int
		err := pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE queue = 'webhooks' AND state IN ('available', 'running')").Scan(&n)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d webhooks still undelivered after 2 minutes", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastJobID is the newest River job's id, so that reportBatches counts the jobs queued after.
func lastJobID(b *testing.B, pool *pgxpool.Pool) int64 {
	var id int64
	if err := pool.QueryRow(context.Background(), "SELECT coalesce(max(id), 0) FROM river_job").Scan(&id); err != nil {
		b.Fatal(err)
	}
	return id
}

// reportBatches adds events/batch, the mean number of events of the webhook batch jobs
// queued since job id since (the writer's batches: how far River's fetch and completion per
// job are shared), when there were any.
func reportBatches(b *testing.B, pool *pgxpool.Pool, since int64) {
	var jobs int
	var mean float64
	if err := pool.QueryRow(context.Background(), `SELECT count(*), coalesce(avg(jsonb_array_length(args->'events')), 0)
		FROM river_job WHERE id > $1 AND kind = 'webhook.deliver_batch'`, since).Scan(&jobs, &mean); err != nil {
		b.Fatal(err)
	}
	if jobs > 0 {
		b.ReportMetric(mean, "events/batch")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU sums utime and stime of the postmaster and its children (clock ticks of 10 ms).
func (m *cpuMeter) serverCPU() time.Duration {
	if m.pgDir == "" {
		return 0
	}
	pidFile, err := os.ReadFile(filepath.Join(m.pgDir, "postmaster.pid"))
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
		pid := strings.TrimSuffix(filepath.Base(filepath.Dir(p)), "/")
		if pid != master && f[1] != master { // f[1]: the parent's pid
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
