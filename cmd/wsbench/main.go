// Command wsbench measures the presence WebSocket's cursor fan-out against a baseline in one
// invocation: it starts a bare coder/websocket room broadcast (no auth, no validation) and
// then the real service (internal/app, on a fresh database), each as a child process so
// that /proc gives the server's own CPU and RSS, and drives both with the logic of the
// shared yardstick (shared/bench/wsload): R rooms × U users sending cursors at -hz, then
// -idle idle connections. It prints `go test -bench`-style lines that cmd/benchreport turns
// into ratios, and the raw JSON results.
//
// Targets m4sh-nats1 and m4sh-nats2 run the service with PUBSUB=nats (an embedded NATS
// server as a third child): one node, then two nodes on one database with each room's users
// alternating between them, so that about half of the deliveries cross NATS. CPU and RSS
// are summed over the nodes and the NATS server.
//
// Target m4sh-prev runs the service of another wsbench binary (-prev, built from the
// previous commit): with it the run is an A/B of the cursor path, m4sh-prev the baseline.
// Targets m4sh+state (every user also sets a presence state at 5 Hz) and m4sh+tutoring (each
// room's tutor holds the spotlight and sends viewports at 10 Hz, every user reacts at 1 Hz)
// measure the cost per delivered frame of that mix beside cursor-only m4sh, the baseline of
// the run. -repeat runs the targets that many times, interleaved, to see the noise.
//
//	wsbench [-rooms 50 -users 20 -hz 20 -duration 10s -idle 10000] [-database-url URL]
//	wsbench -rooms 25 -users 20 -idle 0 -targets m4sh,m4sh-nats1,m4sh-nats2
//	wsbench -rooms 25 -users 20 -idle 0 -targets m4sh-prev,m4sh -prev /tmp/wsbench-main -repeat 3
//	wsbench -rooms 25 -users 20 -idle 0 -targets m4sh,m4sh+state,m4sh+tutoring
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/m4sh/backend/internal/app"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/debugserver"
	"github.com/m4sh/backend/internal/postgres"
)

const benchSecret = "wsbench-secret-0123456789abcdef0123456789"

var (
	serveMode = flag.String("serve", "", "child mode: serve bare | m4sh on -listen")
	listen    = flag.String("listen", "127.0.0.1:0", "child mode: listen address")
	dbURL     = flag.String("database-url", os.Getenv("TEST_DATABASE_URL"), "admin URL of a PostgreSQL server (a fresh database is created and dropped)")
	idleN     = flag.Int("idle", 10000, "idle connections for the memory figure (0: skip)")
	targets   = flag.String("targets", "baseline,m4sh", "which servers to measure")
	prevBin   = flag.String("prev", "", "wsbench binary of the previous commit, for target m4sh-prev")
	repeat    = flag.Int("repeat", 1, "run the targets this many times, interleaved")
)

func main() {
	flag.Parse()
	raiseFileLimit()
	var err error
	switch *serveMode {
	case "bare":
		serveBare(*listen)
	case "m4sh":
		err = serveM4sh(*listen)
	case "nats":
		err = serveNATS(*listen)
	case "":
		err = orchestrate()
	default:
		err = fmt.Errorf("unknown -serve %q", *serveMode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// serveM4sh runs the wired service the way `m4sh serve` does, minus River (no jobs here).
func serveM4sh(addr string) error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	// Migrate first: a cluster node records its heartbeat as it starts.
	pool, err := postgres.Connect(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	m, err := postgres.NewSchemaMigrator(pool, log)
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	pool.Close()
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if cfg.DebugAddr != "" { // profile a benchmark server: DEBUG_ADDR=127.0.0.1:6060 wsbench …
		dsrv, _, err := debugserver.Start(cfg.DebugAddr)
		if err != nil {
			return fmt.Errorf("DEBUG_ADDR: %w", err)
		}
		defer dsrv.Close()
	}
	return http.ListenAndServe(addr, a.Handler)
}

// serveNATS runs an embedded NATS server on addr until killed.
func serveNATS(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	p, _ := strconv.Atoi(port)
	s, err := natsserver.NewServer(&natsserver.Options{Host: host, Port: p, NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	s.Start()
	s.WaitForShutdown()
	return nil
}

type child struct {
	cmd  *exec.Cmd
	addr string
}

// startChild runs `bin -serve mode` (bin "" is this binary).
func startChild(bin, mode string, env []string) (*child, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.Command(bin, "-serve", mode, "-listen", addr)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &child{cmd: cmd, addr: addr}, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("%s server did not listen on %s", mode, addr)
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// freshDatabase creates an empty database on the admin URL's server and returns its URL and
// a function that drops it.
func freshDatabase(admin string) (string, func(), error) {
	if admin == "" {
		return "", nil, errors.New("no database: set -database-url or TEST_DATABASE_URL (make bench does)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	name := "wsbench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	drop := func() {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(ctx)
	}
	i := strings.LastIndex(admin, "/")
	j := strings.Index(admin[i:], "?")
	u := admin[:i+1] + name
	if j >= 0 {
		u += admin[i+j:]
	}
	return u, drop, nil
}

func orchestrate() error {
	want := map[string]bool{}
	for _, t := range strings.Split(*targets, ",") {
		want[strings.TrimSpace(t)] = true
	}
	type run struct {
		variant, mode, target string
		env                   []string
		nodes                 int  // m4sh processes (clients spread over them)
		nats                  bool // start a NATS server and set PUBSUB=nats
		bin                   string
		mix                   mixRates
	}
	var runs []run
	if want["baseline"] {
		runs = append(runs, run{variant: "baseline", mode: "bare", target: "bare", nodes: 1})
	}
	if want["m4sh-prev"] && *prevBin == "" {
		return errors.New("target m4sh-prev needs -prev (a wsbench binary built from the previous commit)")
	}
	for _, v := range []struct {
		name  string
		nodes int
		nats  bool
		bin   string
		mix   mixRates
	}{
		{name: "m4sh-prev", nodes: 1, bin: *prevBin},
		{name: "m4sh", nodes: 1},
		{name: "m4sh+state", nodes: 1, mix: mixRates{state: 5}},
		{name: "m4sh+tutoring", nodes: 1, mix: mixRates{viewport: 10, reaction: 1}},
		{name: "m4sh-nats1", nodes: 1, nats: true},
		{name: "m4sh-nats2", nodes: 2, nats: true},
	} {
		if !want[v.name] {
			continue
		}
		u, drop, err := freshDatabase(*dbURL)
		if err != nil {
			return err
		}
		defer drop()
		runs = append(runs, run{variant: v.name, mode: "m4sh", target: "m4sh", env: []string{
			"DATABASE_URL=" + u, "AUTH_JWT_SECRET=" + *secret, "LOG_LEVEL=warn", "DB_MAX_CONNS=8",
			"CLASSROOM_MAX_MEMBERS=1000",
		}, nodes: v.nodes, nats: v.nats, bin: v.bin, mix: v.mix})
	}
	var all []run
	for range max(*repeat, 1) {
		all = append(all, runs...)
	}
	for _, r := range all {
		for _, mode := range []string{"load", "idle"} {
			if mode == "idle" && *idleN == 0 {
				continue
			}
			if mode == "idle" && r.nodes > 1 {
				continue
			}
			var procs []*child
			stopAll := func() {
				for i := len(procs) - 1; i >= 0; i-- {
					procs[i].stop()
				}
			}
			env := r.env
			if r.nats {
				n, err := startChild("", "nats", nil)
				if err != nil {
					return err
				}
				procs = append(procs, n)
				env = append(slices.Clone(env), "PUBSUB=nats", "NATS_URL=nats://"+n.addr)
			}
			var nodes []string
			for range r.nodes {
				c, err := startChild(r.bin, r.mode, env)
				if err != nil {
					stopAll()
					return err
				}
				procs = append(procs, c)
				nodes = append(nodes, c.addr)
			}
			c := procs[len(procs)-r.nodes]
			*target, *addr, *pid = r.target, c.addr, c.cmd.Process.Pid
			*extraPids = (*extraPids)[:0]
			for _, p := range procs {
				if p != c {
					*extraPids = append(*extraPids, p.cmd.Process.Pid)
				}
			}
			*spreadAddrs = nil
			if r.nodes > 1 {
				*spreadAddrs = nodes
			}
			*idle = 0
			*label = r.variant
			*mix = r.mix
			if mode == "idle" {
				*idle = *idleN
			}
			res, err := runLoad()
			stopAll()
			if err != nil {
				return fmt.Errorf("%s %s: %w", r.variant, mode, err)
			}
			res["mode"] = mode
			j, _ := json.Marshal(res)
			fmt.Fprintln(os.Stderr, string(j))
			if mode == "load" {
				usPer, _ := res["server_us_per_delivery"].(float64)
				// With NATS variants the run is the scale-out comparison: the one-node,
				// in-process service is its baseline.
				group, name := "WSCursorFanout", r.variant
				switch {
				case want["m4sh-prev"]:
					// A/B of the cursor path against the previous commit's build.
					group = "WSCursorAB"
					if name == "m4sh-prev" {
						name = "baseline"
					}
				case want["m4sh+state"] || want["m4sh+tutoring"]:
					// Cost per delivered frame with the mix, against cursors only.
					group = "WSPresenceMix"
					if name == "m4sh" {
						name = "baseline"
					}
				case want["m4sh-nats1"] || want["m4sh-nats2"]:
					group = "WSScaleOut"
					if name == "m4sh" {
						name = "baseline"
					}
				}
				mixed := ""
				if m, _ := res["mix_per_s"].(map[string]float64); len(m) > 0 {
					for _, k := range kindNames {
						if v, ok := m[k]; ok {
							mixed += fmt.Sprintf("\t%v %s/s", v, k)
						}
					}
				}
				fmt.Printf("Benchmark%s%dx%d/%s\t1\t%.0f ns/op\t%v deliveries/s\t%v expected/s\t%v p50-ms\t%v p99-ms\t%v server-cores\t%v rss-MiB\t%v closed%s\n",
					group, *rooms, *users, name, usPer*1000, res["delivered_per_s"], res["expected_per_s"], res["p50_ms"], res["p99_ms"],
					res["server_cores"], res["server_rss_mib"], res["closed_conns"], mixed)
			} else {
				fmt.Printf("BenchmarkWSIdle%d/%s\t1\t%v KiB/conn\n", *idleN, r.variant, res["kib_per_conn"])
			}
		}
	}
	return nil
}
