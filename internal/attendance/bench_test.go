package attendance_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/attendance"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/classroom"
	"github.com/m4sh/backend/internal/cluster"
	"github.com/m4sh/backend/internal/presence"
	"github.com/m4sh/backend/internal/users"
	"github.com/m4sh/backend/internal/webhooktest"
	"github.com/m4sh/backend/internal/ws"
)

type nopSink struct{}

func (nopSink) Deliver(*presence.Event) {}
func (nopSink) CloseWith(int, string)   {}

// BenchmarkJoinLeave is a user's whole presence in a session — join (snapshot included) and
// leave, grace off — on hubs wired as the service wires them, in the same run: attendance
// off, on without webhooks, and on with webhooks delivered meanwhile to a loopback receiver
// (in this process: its CPU and the deliveries' are on the same 2 cores as the joins):
//   - alone: a hub without a Directory; attendance queues each join and leave for the
//     batching writer, and the run lasts until it has written them (Flush); without it a
//     join touches no database at all;
//   - cluster: a hub over a cluster.Node (PUBSUB=nats); the node hands each first arrival
//     and last departure, once committed, to the same batching writer (Changed), and the
//     run lasts until it has written them. Last, with River stopped: events inserted but
//     not delivered.
//
// 8 sessions, users spread over them, GOMAXPROCS×4 goroutines. Besides wall time per op,
// go-cpu-µs/op and pg-cpu-µs/op are the CPU this process and the PostgreSQL server spent
// per op, the deliveries of the variant's events included (waited for after the timer
// stops): what the joins compete with on a shared machine.
//
// The receiver is webhooktest's: a minimal HTTP/1.1 responder (it parses each request's
// headers and Content-Length and consumes the body, nothing more) in this process, its CPU
// in go-cpu-µs/op, on the same cores as the joins — as a deployment's receiver on another
// host would not be. M4SH_BENCH_RECEIVER=process runs it in a child process and reports its
// CPU apart as recv-cpu-µs/op; =nethttp puts net/http's server in this process instead, as
// the benchmark had it before.
func BenchmarkJoinLeave(b *testing.B) {
	recv := webhooktest.Start(b)
	e := apptest.New(b, map[string]string{"WEBHOOK_URL": recv.URL, "WEBHOOK_SECRET": testSecret})
	tok := e.Token("tina")
	class := apptest.MustCreate[api.Classroom](b, e, tok, "/api/v1/classrooms/", map[string]any{"title": "Bench"})
	sessions := make([]uuid.UUID, 8)
	for i := range sessions {
		sessions[i] = apptest.MustCreate[api.ClassroomSession](b, e, tok, "/api/v1/classrooms/"+class.Id.String()+"/sessions/", nil).Id
	}
	var next atomic.Int64
	cpu := newCPUMeter(b, e.Pool, recv)
	delivering := true // until River is stopped below
	run := func(b *testing.B, h *presence.Hub, rec *attendance.Recorder) {
		b.SetParallelism(4)
		b.ReportAllocs()
		b.ResetTimer()
		since := lastJobID(b, e.Pool)
		cpu.start()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := next.Add(1)
				u := presence.User{UserID: fmt.Sprint("u", n), Name: "U", Role: "student"}
				c, err := h.Join(class.Id, sessions[n%int64(len(sessions))], u, nopSink{}, func([]presence.User) {})
				if err != nil {
					b.Error(err)
					return
				}
				c.Leave()
			}
		})
		if rec != nil {
			// Measured until the writer has caught up: its queue absorbs bursts, not a rate.
			if err := rec.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if delivering {
			waitDelivered(b, e.Pool)
		}
		cpu.report(b)
		reportBatches(b, e.Pool, since)
	}
	// The service's recorder (webhooks on), and one without webhooks, its writer started.
	quiet := attendance.New(e.Pool, nil, nil)
	quiet.Start(uuid.New())
	b.Cleanup(func() { quiet.Stop(context.Background()) })
	variants := []struct {
		name string
		rec  *attendance.Recorder
	}{{"off", nil}, {"on,webhooks=off", quiet}, {"on", e.App.Attendance}}
	for _, v := range variants {
		b.Run("alone/attendance="+v.name, func(b *testing.B) {
			o := presence.Options{}
			if v.rec != nil {
				o.OnTransition = v.rec.Transition
			}
			run(b, presence.NewHub(o), v.rec)
		})
	}
	clusterRuns := func(variants []struct {
		name string
		rec  *attendance.Recorder
	}) {
		for _, v := range variants {
			b.Run("cluster/attendance="+v.name, func(b *testing.B) {
				co := cluster.Options{HeartbeatInterval: 10e9}
				if v.rec != nil {
					co.Recorder = v.rec
				}
				node := cluster.New(e.Pool, co)
				node.Start(context.Background())
				defer node.Stop(context.Background())
				run(b, presence.NewHub(presence.Options{Directory: node}), v.rec)
			})
		}
	}
	clusterRuns(variants)
	// With River stopped: the events are inserted, not delivered (what joins pay themselves,
	// apart from the CPU the deliveries take on this machine).
	if err := e.App.River.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	delivering = false
	clusterRuns(append(variants[:0:0], struct {
		name string
		rec  *attendance.Recorder
	}{"on,delivery=stopped", e.App.Attendance}))
}

// BenchmarkJoinLeaveWS is the same through the real WebSocket endpoint of a node alone —
// handshake, token, role query, snapshot, close — on servers sharing everything but the
// attendance hook (off, on without webhooks, on with webhooks delivered to a loopback
// receiver meanwhile), in the same run. 200 members joining in turn, GOMAXPROCS×8 clients.
// The receiver and the CPU columns are BenchmarkJoinLeave's.
func BenchmarkJoinLeaveWS(b *testing.B) {
	recv := webhooktest.Start(b)
	e := apptest.New(b, map[string]string{"WEBHOOK_URL": recv.URL, "WEBHOOK_SECRET": testSecret, "API_WRITE_RATE_PER_MIN": "100000"})
	tok := e.Token("tina")
	class := apptest.MustCreate[api.Classroom](b, e, tok, "/api/v1/classrooms/", map[string]any{"title": "Bench"})
	sess := apptest.MustCreate[api.ClassroomSession](b, e, tok, "/api/v1/classrooms/"+class.Id.String()+"/sessions/", nil)
	const members = 200
	toks := make([]string, members)
	for i := range toks {
		u := fmt.Sprint("m", i)
		apptest.MustCreate[api.Member](b, e, tok, "/api/v1/classrooms/"+class.Id.String()+"/members/", map[string]any{"user_id": u})
		toks[i] = e.Token(u)
	}
	verifier, err := auth.NewVerifier(auth.Options{Secret: []byte(apptest.Secret)})
	if err != nil {
		b.Fatal(err)
	}
	schemas, err := ws.CompileSchemas(asyncapi.YAML)
	if err != nil {
		b.Fatal(err)
	}
	c := e.Config.WS
	serve := func(o presence.Options) string {
		srv := ws.New(ws.Deps{Registerer: prometheus.NewRegistry(), Verifier: verifier, Users: users.New(db.New(e.Pool), 1000), Roles: classroom.New(e.Pool, classroom.Options{}),
			Hub: presence.NewHub(o), Schemas: schemas, Log: slog.New(slog.DiscardHandler),
			Options: ws.Options{MaxPayloadBytes: c.MaxPayloadBytes, PingInterval: c.PingInterval, PongTimeout: c.PongTimeout,
				WriteTimeout: c.WriteTimeout, SendQueue: c.SendQueue, MaxWritePause: c.MaxWritePause}})
		mux := http.NewServeMux()
		mux.Handle("GET /ws/classroom/{class_id}/session/{session_id}/{$}", srv)
		hs := httptest.NewServer(mux)
		b.Cleanup(func() { _ = srv.Shutdown(context.Background()); hs.Close() })
		return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws/classroom/" + class.Id.String() + "/session/" + sess.Id.String() + "/"
	}
	quiet := attendance.New(e.Pool, nil, nil) // attendance without webhooks
	quiet.Start(uuid.New())
	b.Cleanup(func() { quiet.Stop(context.Background()) })
	variants := []struct {
		name string
		rec  *attendance.Recorder
	}{{"off", nil}, {"on,webhooks=off", quiet}, {"on", e.App.Attendance}}
	var next atomic.Int64
	cpu := newCPUMeter(b, e.Pool, recv)
	for _, v := range variants {
		o := presence.Options{}
		if v.rec != nil {
			o.OnTransition = v.rec.Transition
		}
		url := serve(o)
		b.Run("alone/attendance="+v.name, func(b *testing.B) {
			b.SetParallelism(8)
			b.ResetTimer()
			since := lastJobID(b, e.Pool)
			cpu.start()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h := http.Header{"Authorization": {"Bearer " + toks[next.Add(1)%members]}}
					c, _, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{HTTPHeader: h})
					if err != nil {
						b.Error(err)
						return
					}
					if _, _, err := c.Read(context.Background()); err != nil {
						b.Error(err)
					}
					_ = c.Close(websocket.StatusNormalClosure, "")
				}
			})
			if v.rec != nil { // measured until the writer has caught up
				if err := v.rec.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			waitDelivered(b, e.Pool)
			cpu.report(b)
			reportBatches(b, e.Pool, since)
		})
	}
}
