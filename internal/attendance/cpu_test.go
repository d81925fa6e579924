package attendance_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/cputime"
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
	dir, err := cputime.DataDir(context.Background(), pool)
	if err != nil {
		b.Logf("no server CPU: %v", err)
	}
	return &cpuMeter{pgDir: dir, recv: recv}
}

func (m *cpuMeter) start() {
	m.proc, m.server, m.rcpu = cputime.Process(), cputime.Server(m.pgDir), m.recvCPU()
}

func (m *cpuMeter) recvCPU() time.Duration {
	_, cpu := m.recv.Stats()
	return cpu
}

// report adds go-cpu-µs/op, pg-cpu-µs/op and (receiver in a child process)
// recv-cpu-µs/op to b's results.
func (m *cpuMeter) report(b *testing.B) {
	proc, server, recv := cputime.Process()-m.proc, cputime.Server(m.pgDir)-m.server, m.recvCPU()-m.rcpu
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
