package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/app"
	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/cputime"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/solo"
	"github.com/m4sh/backend/internal/webhook"
	"github.com/m4sh/backend/internal/webhooktest"
)

// testSecret is 32 random-looking bytes, whsec_-encoded.
const testSecret = "whsec_C2FSb3ZlbHlQb255MTIzNDU2Nzg5MGFiY2RlZmdoaWo="

// delivery is one request the receiver got.
type delivery struct {
	id, ts, sig string
	body        []byte
	event       struct {
		Type      string          `json:"type"`
		ID        string          `json:"id"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
}

// receiver is a real loopback HTTP receiver; answer decides each request's status from its
// 1-based arrival number (it may block until the request's context ends: a hung receiver).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(r *http.Request, n int) int
}

func newReceiver(t *testing.T, answer func(r *http.Request, n int) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{id: r.Header.Get("webhook-id"), ts: r.Header.Get("webhook-timestamp"), sig: r.Header.Get("webhook-signature"), body: body}
		_ = json.Unmarshal(body, &d.event)
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		n := len(rc.got)
		rc.mu.Unlock()
		status := http.StatusNoContent
		if rc.answer != nil {
			status = rc.answer(r, n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verifyIndependently checks a delivery's signature as a receiver following the Standard
// Webhooks text would, without the package's code: decode the secret after "whsec_",
// HMAC-SHA256 "id.timestamp.body", compare with each space-separated "v1,<base64>".
func verifyIndependently(t *testing.T, secret string, d delivery) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := strconv.ParseInt(d.ts, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		t.Errorf("webhook-timestamp %q is not a current Unix time", d.ts)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", d.id, d.ts, d.body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(d.sig) {
		v, b64, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return
		}
	}
	t.Errorf("delivery %s: signature %q does not verify", d.id, d.sig)
}

// fastSchedule is a millisecond back-off: 50 ms doubling to 200 ms, for 2 s (13 attempts).
var fastSchedule = webhook.Schedule{Base: 50 * time.Millisecond, Cap: 200 * time.Millisecond, For: 2 * time.Second}

func fastRetry(c *config.Config) {
	s := fastSchedule
	c.Webhook.Retry = config.WebhookRetry{Base: s.Base, Cap: s.Cap, For: s.For, Poll: 50 * time.Millisecond}
}

func webhookEnv(url string, extra ...string) map[string]string {
	env := map[string]string{"WEBHOOK_URL": url, "WEBHOOK_SECRET": testSecret}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// startSession creates a classroom and a session through the API, as tutor tina.
func startSession(t *testing.T, e *apptest.Env) (tok string, class api.Classroom, s api.ClassroomSession) {
	t.Helper()
	tok = e.Token("tina")
	class = apptest.MustCreate[api.Classroom](t, e, tok, "/api/v1/classrooms/", map[string]any{"title": "Algebra"})
	s = apptest.MustCreate[api.ClassroomSession](t, e, tok, "/api/v1/classrooms/"+class.Id.String()+"/sessions/", map[string]any{"title": "Week 1"})
	return tok, class, s
}

func endSession(t *testing.T, e *apptest.Env, tok string, class api.Classroom, s api.ClassroomSession) {
	t.Helper()
	r := e.Do(apptest.Request{Method: http.MethodPatch, Path: "/api/v1/classrooms/" + class.Id.String() + "/sessions/" + s.Id.String() + "/", Token: tok, Body: map[string]any{"status": "ended"}})
	if r.Status != http.StatusOK {
		t.Fatalf("end session = %d: %s", r.Status, r.Body)
	}
}

// TestSessionEventsSignedAndOnlyOnTransition: starting and ending a session deliver
// session.started and session.ended, signed (checked independently), with the documented
// data; ending it again sends nothing more.
func TestSessionEventsSignedAndOnlyOnTransition(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL), fastRetry)
	tok, class, s := startSession(t, e)
	endSession(t, e, tok, class, s)
	endSession(t, e, tok, class, s)
	waitFor(t, 10*time.Second, "two deliveries", func() bool { return len(rc.deliveries()) >= 2 })
	time.Sleep(300 * time.Millisecond) // a wrongly sent second session.ended would be here by now
	got := rc.deliveries()
	if len(got) != 2 {
		t.Fatalf("deliveries = %d, want 2 (started, ended once)", len(got))
	}
	types := map[string]delivery{}
	for _, d := range got {
		verifyIndependently(t, testSecret, d)
		if d.event.ID != d.id || !strings.HasPrefix(d.id, "msg_") {
			t.Errorf("body id %q, header id %q: want the same msg_ id", d.event.ID, d.id)
		}
		types[d.event.Type] = d
	}
	var started, ended webhook.SessionData
	if err := json.Unmarshal(types["session.started"].event.Data, &started); err != nil || started.SessionID != s.Id || started.ClassroomID != class.Id || started.Title != "Week 1" || started.TutorID != "tina" || started.EndedAt != nil {
		t.Errorf("session.started data = %s (%v)", types["session.started"].event.Data, err)
	}
	if err := json.Unmarshal(types["session.ended"].event.Data, &ended); err != nil || ended.SessionID != s.Id || ended.EndedAt == nil {
		t.Errorf("session.ended data = %s (%v)", types["session.ended"].event.Data, err)
	}
}

// TestAtLeastOnceAcrossFailures: a receiver failing the first 3 attempts (500, 503, a
// timeout) gets the event on the 4th, with the same id and body each time.
func TestAtLeastOnceAcrossFailures(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(r *http.Request, n int) int {
		switch n {
		case 1:
			return http.StatusInternalServerError
		case 2:
			return http.StatusServiceUnavailable
		case 3:
			<-r.Context().Done() // the attempt's timeout
			return http.StatusOK
		}
		return http.StatusOK
	})
	e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL, "WEBHOOK_TIMEOUT", "300ms", "WEBHOOK_EVENTS", "session.started"), fastRetry)
	startSession(t, e)
	waitFor(t, 15*time.Second, "the 4th attempt", func() bool { return len(rc.deliveries()) >= 4 })
	got := rc.deliveries()
	for i, d := range got {
		verifyIndependently(t, testSecret, d)
		if d.id != got[0].id || string(d.body) != string(got[0].body) {
			t.Errorf("attempt %d: id %s body %s, want the first attempt's %s %s", i+1, d.id, d.body, got[0].id, got[0].body)
		}
	}
	waitFor(t, 5*time.Second, "the job completed", func() bool { return jobStates(t, e)[rivertype.JobStateCompleted] == 1 })
	if n := len(rc.deliveries()); n != 4 {
		t.Errorf("attempts = %d, want exactly 4", n)
	}
	metrics := scrape(t, e)
	for _, want := range []string{
		`m4sh_webhook_delivered_total{type="session.started"} 1`,
		`m4sh_webhook_failed_attempts_total{type="session.started"} 3`,
		`m4sh_webhook_oldest_pending_seconds 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestDiscardedAfterTheLastAttempt: a receiver that always fails sees MaxAttempts attempts,
// then the event is discarded and counted; 410 Gone stops at once.
func TestDiscardedAfterTheLastAttempt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, attempts int
	}{{http.StatusBadGateway, fastSchedule.MaxAttempts()}, {http.StatusGone, 1}} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(*http.Request, int) int { return tc.status })
			e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL, "WEBHOOK_EVENTS", "session.started"), fastRetry)
			startSession(t, e)
			waitFor(t, 20*time.Second, "the event given up", func() bool {
				st := jobStates(t, e)
				return st[rivertype.JobStateDiscarded]+st[rivertype.JobStateCancelled] == 1
			})
			if n := len(rc.deliveries()); n != tc.attempts {
				t.Errorf("attempts = %d, want %d", n, tc.attempts)
			}
			if m := scrape(t, e); !strings.Contains(m, `m4sh_webhook_discarded_total{type="session.started"} 1`) {
				t.Errorf("discarded not counted")
			}
		})
	}
}

// TestDeliveredAcrossRestart: the service stops while an event is between retries; a new
// process on the same database delivers it.
func TestDeliveredAcrossRestart(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	up := false
	rc := newReceiver(t, func(*http.Request, int) int {
		mu.Lock()
		defer mu.Unlock()
		if up {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	url := dbtest.NewURL(t)
	slow := func(c *config.Config) { // first retry after 1 s: the restart lands in between
		c.Webhook.Retry = config.WebhookRetry{Base: time.Second, Cap: time.Second, For: time.Minute, Poll: 50 * time.Millisecond}
	}
	first := apptest.Start(t, url, webhookEnv(rc.URL, "WEBHOOK_EVENTS", "session.started"), slow)
	startSession(t, first)
	waitFor(t, 10*time.Second, "a failed attempt", func() bool { return len(rc.deliveries()) >= 1 })
	first.Stop()
	mu.Lock()
	up = true
	mu.Unlock()
	n := len(rc.deliveries())
	second := apptest.Start(t, url, webhookEnv(rc.URL, "WEBHOOK_EVENTS", "session.started"), slow)
	waitFor(t, 15*time.Second, "delivery by the new process", func() bool { return jobStates(t, second)[rivertype.JobStateCompleted] == 1 })
	got := rc.deliveries()
	if len(got) != n+1 || got[len(got)-1].id != got[0].id {
		t.Errorf("deliveries: %d before the restart, %d after; want one more, same id", n, len(got))
	}
}

// TestHungReceiverDelaysNothingElse: while every webhook worker waits on a receiver that
// never answers, REST calls answer promptly and a job on the default queue runs.
func TestHungReceiverDelaysNothingElse(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(r *http.Request, _ int) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL, "WEBHOOK_WORKERS", "2", "WEBHOOK_TIMEOUT", "30s"), fastRetry)
	t.Cleanup(func() { close(release) }) // before the service stops, which waits for running jobs
	tok, class, _ := startSession(t, e)
	for range 3 {
		apptest.MustCreate[api.ClassroomSession](t, e, tok, "/api/v1/classrooms/"+class.Id.String()+"/sessions/", nil)
	}
	waitFor(t, 10*time.Second, "both webhook workers hung", func() bool { return len(rc.deliveries()) >= 2 })

	var worst time.Duration
	for range 20 {
		start := time.Now()
		r := e.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/classrooms/" + class.Id.String() + "/sessions/", Token: tok})
		if r.Status != http.StatusOK {
			t.Fatalf("list sessions = %d", r.Status)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("slowest of 20 REST calls while the receiver hangs: %s", worst)
	if worst > time.Second {
		t.Errorf("a REST call took %s while the receiver hung", worst)
	}

	start := time.Now()
	res, err := e.App.River.Insert(context.Background(), solo.ReconcileArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the default-queue job", func() bool {
		j, err := e.App.River.JobGet(context.Background(), res.Job.ID)
		return err == nil && j.State == rivertype.JobStateCompleted
	})
	t.Logf("a default-queue job ran in %s while the receiver hung", time.Since(start))
	if n := len(rc.deliveries()); n != 2 {
		t.Errorf("receiver got %d requests, want 2 (the queue's worker bound)", n)
	}
}

// TestNoEventForARolledBackChange: Publish inside a transaction that rolls back leaves no
// job; the same Publish in one that commits leaves one.
func TestNoEventForARolledBackChange(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL), fastRetry)
	ctx := context.Background()
	failed := errors.New("the change failed after the event was queued")
	err := postgres.InTx(ctx, e.Pool, func(tx pgx.Tx) error {
		if err := e.App.Webhooks.Publish(ctx, tx, webhook.Event{Type: webhook.Ping, Data: webhook.PingData{Message: "rolled back"}}); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("InTx = %v", err)
	}
	if err := postgres.InTx(ctx, e.Pool, func(tx pgx.Tx) error {
		return e.App.Webhooks.Publish(ctx, tx, webhook.Event{Type: webhook.Ping, Data: webhook.PingData{Message: "committed"}})
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the committed event", func() bool { return len(rc.deliveries()) >= 1 })
	time.Sleep(200 * time.Millisecond)
	got := rc.deliveries()
	if len(got) != 1 || !strings.Contains(string(got[0].event.Data), `"committed"`) {
		t.Errorf("deliveries = %d (%s), want only the committed one", len(got), got[0].body)
	}
	waitFor(t, 5*time.Second, "the job marked completed", func() bool { return jobStates(t, e)[rivertype.JobStateCompleted] == 1 })
	if total := jobStates(t, e); len(total) != 1 {
		t.Errorf("webhook jobs by state = %v, want one completed and nothing else", total)
	}
}

// TestStartupRefusesBadSettings: a malformed secret and an unknown event name stop start-up
// with the variable named.
func TestStartupRefusesBadSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WEBHOOK_URL": "http://127.0.0.1:1/", "WEBHOOK_SECRET": "hunter2"}, "config: WEBHOOK_SECRET: must start with \"whsec_\""},
		{map[string]string{"WEBHOOK_URL": "http://127.0.0.1:1/", "WEBHOOK_SECRET": testSecret, "WEBHOOK_EVENTS": "session.started,session.paused"}, "config: WEBHOOK_EVENTS: \"session.paused\" is not an event"},
		{map[string]string{"WEBHOOK_URL": "http://127.0.0.1:1/"}, "config: WEBHOOK_SECRET: must be set when WEBHOOK_URL is"},
		{map[string]string{"WEBHOOK_URL": "ftp://x/", "WEBHOOK_SECRET": testSecret}, "config: WEBHOOK_URL: must be an http:// or https:// URL"},
	} {
		cfg, err := config.Load(func(k string) string { return tc.env[k] })
		if err == nil {
			_, err = app.NewDeliverer(cfg.Webhook, nil, nil)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v: error %v, want %q", tc.env, err, tc.want)
		}
	}
}

// TestDrainRate measures the queue draining to a loopback receiver: 2,000 events queued in
// one transaction, then timed from the first delivery to the last. The figure depends on the
// machine's load.
func TestDrainRate(t *testing.T) {
	const drainWorkers = 100
	if testing.Short() {
		t.Skip("timing")
	}
	t.Parallel()
	rc := newReceiver(t, nil)
	e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL, "WEBHOOK_WORKERS", strconv.Itoa(drainWorkers)), fastRetry)
	ctx := context.Background()
	const n = 2000
	if err := postgres.InTx(ctx, e.Pool, func(tx pgx.Tx) error {
		for i := range n {
			if err := e.App.Webhooks.Publish(ctx, tx, webhook.Event{Type: webhook.Ping, Data: webhook.PingData{Message: strconv.Itoa(i)}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 60*time.Second, "every event", func() bool { return len(rc.deliveries()) >= n })
	rate := float64(n) / time.Since(start).Seconds()
	t.Logf("webhook queue drained %d events in %s: %.0f events/s (WEBHOOK_WORKERS=%d, loopback receiver, shared loaded machine)", n, time.Since(start).Round(time.Millisecond), rate, drainWorkers)
	ids := map[string]bool{}
	for _, d := range rc.deliveries() {
		ids[d.id] = true
	}
	if len(ids) != n {
		t.Errorf("distinct ids = %d, want %d", len(ids), n)
	}
}

// jobStates counts the webhook jobs by state.
func jobStates(t *testing.T, e *apptest.Env) map[rivertype.JobState]int {
	t.Helper()
	res, err := e.App.River.JobList(context.Background(), river.NewJobListParams().Queues(webhook.QueueName).First(10000))
	if err != nil {
		t.Fatal(err)
	}
	out := map[rivertype.JobState]int{}
	for _, j := range res.Jobs {
		out[j.State]++
	}
	return out
}

func scrape(t *testing.T, e *apptest.Env) string {
	t.Helper()
	resp, err := http.Get(e.Server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestQuotaExceededEvent: a snapshot upload refused with 403 quota_exceeded sends
// solo.quota_exceeded with the numbers of the refusal.
func TestQuotaExceededEvent(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL, "SOLO_QUOTA_BYTES", "10", "WEBHOOK_EVENTS", "solo.quota_exceeded"), fastRetry)
	tok := e.Token("alice")
	var s struct {
		ID string `json:"id"`
	}
	r := e.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/", Token: tok, Body: map[string]any{"title": "Draft"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create solo session = %d: %s", r.Status, r.Body)
	}
	r.Decode(t, &s)
	r = e.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/" + s.ID + "/snapshot/", Token: tok,
		Body: []byte("twenty bytes of data"), Header: map[string]string{"Content-Type": "text/plain"}})
	if r.Status != http.StatusForbidden {
		t.Fatalf("upload over quota = %d: %s", r.Status, r.Body)
	}
	waitFor(t, 10*time.Second, "solo.quota_exceeded", func() bool { return len(rc.deliveries()) >= 1 })
	d := rc.deliveries()[0]
	verifyIndependently(t, testSecret, d)
	var data webhook.QuotaExceededData
	if err := json.Unmarshal(d.event.Data, &data); err != nil || d.event.Type != "solo.quota_exceeded" || data.UserID != "alice" ||
		data.SessionID.String() != s.ID || data.Used != 0 || data.Quota != 10 || data.Remaining != 10 {
		t.Errorf("event %s %s (%v), want alice's refusal with used 0, quota 10, remaining 10", d.event.Type, d.event.Data, err)
	}
}

// BenchmarkWebhookDrain queues 1,000 events per iteration in one transaction and times their
// delivery to a loopback receiver with the default WEBHOOK_WORKERS (20) and schedule:
// events/s is the drain rate. One job per event (Publish). The receiver is webhooktest's
// minimal responder in this process (M4SH_BENCH_RECEIVER=process: in a child process;
// =nethttp: net/http's server in this process, as before). go-cpu-µs/event is this
// process's CPU from the commit to the last delivery (River's fetching and completing
// included), pg-cpu-µs/event the PostgreSQL server's meanwhile (all of its processes, in
// 10 ms ticks), recv-cpu-µs/event the receiver's in its child process; queue-go-µs/event
// and queue-pg-µs/event are what queueing them in their transaction cost (not timed).
func BenchmarkWebhookDrain(b *testing.B) {
	benchmarkDrain(b, func(ctx context.Context, e *apptest.Env, tx pgx.Tx, events []webhook.Event) error {
		for _, ev := range events {
			if err := e.App.Webhooks.Publish(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkWebhookDrainBatched is the same with the events queued as the attendance writer
// queues them (PublishMany): ten batch jobs of 100.
func BenchmarkWebhookDrainBatched(b *testing.B) {
	benchmarkDrain(b, func(ctx context.Context, e *apptest.Env, tx pgx.Tx, events []webhook.Event) error {
		return e.App.Webhooks.PublishMany(ctx, tx, events)
	})
}

func benchmarkDrain(b *testing.B, queue func(context.Context, *apptest.Env, pgx.Tx, []webhook.Event) error) {
	rc := webhooktest.Start(b)
	e := apptest.Start(b, dbtest.NewURL(b), webhookEnv(rc.URL), nil)
	ctx := context.Background()
	const n = 1000
	pgDir, err := cputime.DataDir(ctx, e.Pool)
	if err != nil {
		b.Logf("no server CPU: %v", err)
	}
	var total, cpu, pgCPU, recvCPU, queueCPU, queuePG time.Duration
	for i := 0; i < b.N; i++ {
		want, recv0 := rc.Stats()
		want += n
		events := make([]webhook.Event, n)
		for j := range events {
			events[j] = webhook.Event{Type: webhook.Ping, Data: webhook.PingData{Message: strconv.Itoa(j)}}
		}
		q0, qpg0 := cputime.Process(), cputime.Server(pgDir)
		if err := postgres.InTx(ctx, e.Pool, func(tx pgx.Tx) error { return queue(ctx, e, tx, events) }); err != nil {
			b.Fatal(err)
		}
		start, cpu0, pg0 := time.Now(), cputime.Process(), cputime.Server(pgDir)
		queueCPU += cpu0 - q0
		queuePG += pg0 - qpg0
		if got := rc.Wait(want, time.Minute); got < want {
			b.Fatalf("%d of %d events delivered within a minute", got-want+n, n)
		}
		total += time.Since(start)
		cpu += cputime.Process() - cpu0
		pgCPU += cputime.Server(pgDir) - pg0
		_, recv1 := rc.Stats()
		recvCPU += recv1 - recv0
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "go-cpu-µs/event")
	b.ReportMetric(float64(queueCPU.Microseconds())/float64(n*b.N), "queue-go-µs/event")
	if pgDir != "" {
		b.ReportMetric(float64(pgCPU.Microseconds())/float64(n*b.N), "pg-cpu-µs/event")
		b.ReportMetric(float64(queuePG.Microseconds())/float64(n*b.N), "queue-pg-µs/event")
	}
	if rc.Mode == webhooktest.ModeProcess {
		b.ReportMetric(float64(recvCPU.Microseconds())/float64(n*b.N), "recv-cpu-µs/event")
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "events/s")
}

// publishPings queues n ping events ("0" … "n-1") with one PublishMany in one transaction:
// one batch job.
func publishPings(t *testing.T, e *apptest.Env, n int) {
	t.Helper()
	ctx := context.Background()
	events := make([]webhook.Event, n)
	for i := range events {
		events[i] = webhook.Event{Type: webhook.Ping, Data: webhook.PingData{Message: strconv.Itoa(i)}}
	}
	if err := postgres.InTx(ctx, e.Pool, func(tx pgx.Tx) error { return e.App.Webhooks.PublishMany(ctx, tx, events) }); err != nil {
		t.Fatal(err)
	}
}

// pingOf is the message of a delivered ping ("" for anything else).
func pingOf(d delivery) string {
	var p webhook.PingData
	_ = json.Unmarshal(d.event.Data, &p)
	return p.Message
}

// webhookJobs lists the webhooks queue's jobs in id order: kind, state, attempted and
// max_attempts of a single event's job.
func webhookJobs(t *testing.T, e *apptest.Env) []string {
	t.Helper()
	rows, err := e.Pool.Query(context.Background(), `SELECT kind, state, coalesce(args->>'attempted', '0'), max_attempts
		FROM river_job WHERE queue = 'webhooks' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, state, attempted string
		var maxAttempts int
		if err := rows.Scan(&kind, &state, &attempted, &maxAttempts); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s attempted=%s max=%d", kind, state, attempted, maxAttempts))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBatchHandsOverFromTheFailedEvent: six events queued together are one batch job. The
// receiver fails event 3 once (503), or refuses it (410): events 0–2 are delivered once and
// never again; event 3 and the rest become jobs of their own in the transaction completing
// the batch — event 3 with its failed attempt counted and retried once on the per-event
// schedule (503) or discarded (410), events 4 and 5 delivered once each.
func TestBatchHandsOverFromTheFailedEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		wantSends map[string]int
		wantJobs  []string
		metrics   []string
	}{
		{http.StatusServiceUnavailable, map[string]int{"0": 1, "1": 1, "2": 1, "3": 2, "4": 1, "5": 1}, []string{
			"webhook.deliver_batch completed attempted=0 max=13",
			"webhook.deliver completed attempted=1 max=12",
			"webhook.deliver completed attempted=0 max=13",
			"webhook.deliver completed attempted=0 max=13",
		}, []string{`m4sh_webhook_delivered_total{type="ping"} 6`, `m4sh_webhook_failed_attempts_total{type="ping"} 1`}},
		{http.StatusGone, map[string]int{"0": 1, "1": 1, "2": 1, "3": 1, "4": 1, "5": 1}, []string{
			"webhook.deliver_batch completed attempted=0 max=13",
			"webhook.deliver completed attempted=0 max=13",
			"webhook.deliver completed attempted=0 max=13",
		}, []string{`m4sh_webhook_delivered_total{type="ping"} 5`, `m4sh_webhook_failed_attempts_total{type="ping"} 1`, `m4sh_webhook_discarded_total{type="ping"} 1`}},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			var rc *receiver
			var failedOnce atomic.Bool
			rc = newReceiver(t, func(_ *http.Request, n int) int {
				if pingOf(rc.deliveries()[n-1]) == "3" && failedOnce.CompareAndSwap(false, true) {
					return tc.status
				}
				return http.StatusNoContent
			})
			e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL), fastRetry)
			publishPings(t, e, 6)
			total := 0
			for _, n := range tc.wantSends {
				total += n
			}
			waitFor(t, 15*time.Second, "every delivery", func() bool { return len(rc.deliveries()) >= total })
			waitFor(t, 5*time.Second, "every job finished", func() bool {
				st := jobStates(t, e)
				return st[rivertype.JobStateCompleted] == len(tc.wantJobs)
			})
			time.Sleep(300 * time.Millisecond) // a wrongly repeated delivery would be here by now
			got := rc.deliveries()
			sends := map[string]int{}
			ids := map[string]string{}
			var order []string
			for _, d := range got {
				verifyIndependently(t, testSecret, d)
				p := pingOf(d)
				if sends[p] == 0 {
					order = append(order, p)
				}
				sends[p]++
				if prev, ok := ids[p]; ok && prev != d.id {
					t.Errorf("event %s sent with ids %s and %s, want one", p, prev, d.id)
				}
				ids[p] = d.id
			}
			if fmt.Sprint(sends) != fmt.Sprint(tc.wantSends) {
				t.Errorf("sends per event = %v, want %v", sends, tc.wantSends)
			}
			if g := strings.Join(order[:4], ","); g != "0,1,2,3" {
				t.Errorf("first sends in order %v, want 0,1,2,3 first (the batch's order)", order)
			}
			if g, w := strings.Join(webhookJobs(t, e), "\n"), strings.Join(tc.wantJobs, "\n"); g != w {
				t.Errorf("jobs:\n%s\nwant:\n%s", g, w)
			}
			m := scrape(t, e)
			for _, want := range append(tc.metrics, `m4sh_webhook_oldest_pending_seconds 0`) {
				if !strings.Contains(m, want) {
					t.Errorf("metrics lack %q", want)
				}
			}
		})
	}
}

// TestBatchSlowReceiverHandsOverAfterItsBudget: a receiver taking 120 ms an answer, with a
// 300 ms attempt timeout: the batch stops sending once it has spent one timeout, and hands
// the rest over to jobs of their own; every event is delivered exactly once.
func TestBatchSlowReceiverHandsOverAfterItsBudget(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(*http.Request, int) int {
		time.Sleep(120 * time.Millisecond)
		return http.StatusOK
	})
	e := apptest.Start(t, dbtest.NewURL(t), webhookEnv(rc.URL, "WEBHOOK_TIMEOUT", "300ms"), fastRetry)
	const n = 8
	publishPings(t, e, n)
	waitFor(t, 15*time.Second, "every event", func() bool { return len(rc.deliveries()) >= n })
	waitFor(t, 5*time.Second, "every job finished", func() bool {
		st := jobStates(t, e)
		return len(st) == 1 && st[rivertype.JobStateCompleted] > 1
	})
	time.Sleep(300 * time.Millisecond)
	sends := map[string]int{}
	for _, d := range rc.deliveries() {
		sends[pingOf(d)]++
	}
	for i := range n {
		if s := sends[strconv.Itoa(i)]; s != 1 {
			t.Errorf("event %d sent %d times, want once (%v)", i, s, sends)
		}
	}
	// n sends take 960 ms, over three times the budget: some events are handed over, at
	// most n-1 (the first is always sent by the batch), none attempted by it.
	jobs := webhookJobs(t, e)
	if len(jobs) < 2 || len(jobs) > n || jobs[0] != "webhook.deliver_batch completed attempted=0 max=13" {
		t.Fatalf("jobs = %q, want the batch then 1..%d handed-over events", jobs, n-1)
	}
	for _, j := range jobs[1:] {
		if j != "webhook.deliver completed attempted=0 max=13" {
			t.Errorf("handed-over job %q, want completed, not attempted by the batch", j)
		}
	}
}
