package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/m4sh/backend/internal/httppost"
	"github.com/m4sh/backend/internal/jobs"
)

// River job kinds of deliveries. Stored in River's tables: never rename.
const (
	// KindDeliver is one event, with its own attempts and back-off.
	KindDeliver = "webhook.deliver"
	// KindDeliverBatch is up to MaxBatch events queued together (PublishMany), sent in
	// order by one worker; what it cannot deliver becomes KindDeliver jobs.
	KindDeliverBatch = "webhook.deliver_batch"
)

// DeliverArgs is one event to deliver: its id, type and exact body, fixed when it was queued
// so that every attempt sends the same bytes.
type DeliverArgs struct {
	Message Message `json:"message"`
	// Attempted counts the attempts a batch made before handing the event over to a job of
	// its own (0 or 1): its retries continue the Schedule from there.
	Attempted int `json:"attempted,omitempty"`
	// QueuedAt is when a handed-over event was queued in its batch (zero: when this job
	// was), so that the oldest-pending age counts from the event's change, not the hand-over.
	QueuedAt time.Time `json:"queued_at,omitzero"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return KindDeliver }

// DeliverBatchArgs is events queued in one transaction, delivered in order, one POST each
// with its own id, timestamp and signature, exactly as if each were a DeliverArgs.
type DeliverBatchArgs struct {
	Events []BatchEvent `json:"events"`
}

// BatchEvent is a Message in a batch, its body a JSON string rather than a nested object:
// neither PostgreSQL (jsonb) nor the worker (encoding/json) then parses every field of
// every body when the batch is written and read.
type BatchEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Body string `json:"body"`
}

func (e BatchEvent) message() Message {
	return Message{ID: e.ID, Type: e.Type, Body: json.RawMessage(e.Body)}
}

// Kind implements river.JobArgs.
func (DeliverBatchArgs) Kind() string { return KindDeliverBatch }

// Schedule is the retry back-off: attempt n (n ≥ 1) that fails is retried after
// min(Base·2^(n-1), Cap), until the retries cover For; then the event is discarded.
// The default (10 s doubling, capped at 6 h, for 24 h) retries after 10 s, 20 s, 40 s, …,
// 5 h 41 m 20 s (the 12th retry), then 6 h three times: 16 attempts over 29 h 22 m 30 s.
type Schedule struct {
	Base time.Duration
	Cap  time.Duration
	For  time.Duration
}

// DefaultSchedule covers at least 24 hours.
var DefaultSchedule = Schedule{Base: 10 * time.Second, Cap: 6 * time.Hour, For: 24 * time.Hour}

// Delay is how long after failed attempt n the next one runs.
func (s Schedule) Delay(attempt int) time.Duration {
	d := s.Base
	for i := 1; i < attempt && d < s.Cap; i++ {
		d *= 2
	}
	return min(d, s.Cap)
}

// MaxAttempts is the number of attempts whose retry delays first add up to For.
func (s Schedule) MaxAttempts() int {
	var total time.Duration
	n := 1
	for total < s.For {
		total += s.Delay(n)
		n++
	}
	return n
}

// Options configure delivery.
type Options struct {
	URL    string
	Secret Secret
	// Timeout bounds one attempt: connecting, sending and reading the status (WEBHOOK_TIMEOUT).
	Timeout time.Duration
	// Workers bounds concurrent deliveries (WEBHOOK_WORKERS), on the webhooks queue alone.
	Workers  int
	Schedule Schedule
	// FetchPollInterval is how often the queue looks for due retries (River's default, 1 s,
	// when zero); tests with a millisecond schedule shorten it.
	FetchPollInterval time.Duration
	Log               *slog.Logger
	Registerer        prometheus.Registerer
	// Client, when set, sends the requests through net/http (otherwise httppost does, or a
	// net/http client following no redirects when a proxy is configured for the URL).
	Client *http.Client
}

// Deliverer sends queued events: the River worker and its metrics.
type Deliverer struct {
	opts    Options
	sender  sender
	metrics *deliveryMetrics
}

// sender POSTs one event's body with its per-attempt header fields (the constant ones are
// the sender's) and returns the receiver's status; ctx carries the attempt's deadline.
// *httppost.Client is one; netHTTPSender is the other, and the reference httppost is tested
// against.
type sender interface {
	Post(ctx context.Context, header []httppost.Field, body []byte) (int, error)
}

// constantFields are sent with every request.
var constantFields = []httppost.Field{{Name: "Content-Type", Value: "application/json"}, {Name: "User-Agent", Value: "m4sh-webhooks"}}

// netHTTPSender sends through a net/http client.
type netHTTPSender struct {
	client *http.Client
	url    string
}

func (s netHTTPSender) Post(ctx context.Context, header []httppost.Field, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	// Written in canonical form: Set would canonicalize each name on every request.
	req.Header = make(http.Header, len(constantFields)+len(header))
	for _, f := range constantFields {
		req.Header[f.Name] = []string{f.Value}
	}
	for _, f := range header {
		req.Header[f.Name] = []string{f.Value}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read a little of the answer so the connection can be reused; receivers say little.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// newSender picks how requests go out. httppost writes and reads on the worker's goroutine
// (net/http's Transport adds a reader and a writer goroutine per connection and hands every
// exchange between them, which costs as much CPU as the exchange); it speaks no proxy, so a
// proxy configured for the URL (HTTPS_PROXY, HTTP_PROXY) gets net/http.
func newSender(opts Options) sender {
	if opts.Client != nil {
		return netHTTPSender{client: opts.Client, url: opts.URL}
	}
	if !proxied(opts.URL) {
		if c, err := httppost.New(opts.URL, httppost.Options{Header: constantFields, MaxIdle: opts.Workers}); err == nil {
			return c
		}
	}
	// Redirects are not followed: the receiver's URL is configured, and a redirect is
	// answered like any other non-2xx (retried), so a moved receiver shows up in metrics.
	// Idle connections are kept for every worker (the default keeps 2 per host), so a
	// burst reuses connections instead of opening one per event.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opts.Workers
	return netHTTPSender{url: opts.URL, client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// proxied reports whether the environment configures a proxy for rawURL.
func proxied(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	p, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	return err != nil || p != nil
}

// NewDeliverer returns a Deliverer; opts.URL must be set.
func NewDeliverer(opts Options) *Deliverer {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 20
	}
	if opts.Schedule == (Schedule{}) {
		opts.Schedule = DefaultSchedule
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{opts: opts, sender: newSender(opts), metrics: newDeliveryMetrics(opts.Registerer)}
}

// MaxAttempts is what Publish gives each job.
func (d *Deliverer) MaxAttempts() int { return d.opts.Schedule.MaxAttempts() }

// Work is the webhook feature's background work: the delivery workers on their own queue.
// The fetch cooldown is short so that a burst drains at over a thousand events a second
// with the default worker count. pool is River's: a batch hands its undelivered events
// over to jobs of their own in the transaction that completes it.
func (d *Deliverer) Work(pool *pgxpool.Pool) jobs.Work {
	return jobs.Work{
		Workers: []jobs.Worker{jobs.NewWorker(&deliverWorker{d: d}), jobs.NewWorker(&deliverBatchWorker{d: d, pool: pool})},
		Queues: map[string]river.QueueConfig{QueueName: {
			MaxWorkers: d.opts.Workers, FetchCooldown: 5 * time.Millisecond, FetchPollInterval: d.opts.FetchPollInterval,
		}},
	}
}

// Result is one attempt's outcome.
type Result struct {
	Status  int
	Latency time.Duration
}

// ErrGone is a receiver answering 410 Gone: it will never accept this event, so it is not
// retried (Standard Webhooks' way for a receiver to refuse).
var ErrGone = errors.New("receiver answered 410 Gone")

// Send POSTs msg once, signed for now, and reports the status. Only a 2xx is a delivery:
// any other status, a timeout or a network error is returned as an error (ErrGone for 410).
func (d *Deliverer) Send(ctx context.Context, msg Message) (Result, error) {
	return d.send(ctx, msg, d.opts.Secret.signer())
}

// send is Send signing with g, which a batch reuses from one event to the next.
func (d *Deliverer) send(ctx context.Context, msg Message, g *signer) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	status, err := d.sender.Post(ctx, []httppost.Field{
		{Name: headerID, Value: msg.ID},
		{Name: headerTimestamp, Value: ts},
		{Name: headerSignature, Value: g.sign(msg.ID, ts, msg.Body)},
	}, msg.Body)
	res := Result{Status: status, Latency: time.Since(now)}
	if err != nil {
		return res, fmt.Errorf("webhook POST: %w", err)
	}
	switch {
	case res.Status >= 200 && res.Status < 300:
		return res, nil
	case res.Status == http.StatusGone:
		return res, ErrGone
	default:
		return res, fmt.Errorf("webhook receiver answered %d", res.Status)
	}
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	d *Deliverer
}

// Timeout leaves Send's own timeout to act first.
func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return w.d.opts.Timeout + 5*time.Second
}

// NextRetry follows the Schedule, counting the attempt a batch made before the hand-over.
func (w *deliverWorker) NextRetry(j *river.Job[DeliverArgs]) time.Time {
	return time.Now().Add(w.d.opts.Schedule.Delay(j.Attempt + j.Args.Attempted))
}

func (w *deliverWorker) Work(ctx context.Context, j *river.Job[DeliverArgs]) error {
	msg := j.Args.Message
	res, err := w.d.Send(ctx, msg)
	if err == nil {
		w.d.metrics.delivered.WithLabelValues(w.d.metrics.label(msg.Type)).Inc()
		return nil
	}
	if w.d.noteFailure(ctx, msg, j.Attempt+j.Args.Attempted, j.Attempt >= j.MaxAttempts, res, err) == failGone {
		return river.JobCancel(err)
	}
	return err
}

// failure is what a failed attempt leaves to become of its event.
type failure int

const (
	failRetry failure = iota // retried on the Schedule
	failGone                 // refused with 410: discarded, never retried
	failLast                 // discarded after its last attempt
)

// noteFailure counts and logs attempt number attempt of msg, which failed with res and err
// (last: no attempt follows), and says what becomes of the event. Both workers call it, so
// an event's metrics and log lines are the same whether it failed in a batch or alone.
func (d *Deliverer) noteFailure(ctx context.Context, msg Message, attempt int, last bool, res Result, err error) failure {
	typ := d.metrics.label(msg.Type)
	d.metrics.failed.WithLabelValues(typ).Inc()
	log := d.opts.Log.With("webhook_id", msg.ID, "type", msg.Type, "attempt", attempt, "status", res.Status, "err", err)
	switch {
	case errors.Is(err, ErrGone):
		d.metrics.discarded.WithLabelValues(typ).Inc()
		log.WarnContext(ctx, "webhook refused by the receiver (410): not retried")
		return failGone
	case last:
		d.metrics.discarded.WithLabelValues(typ).Inc()
		log.ErrorContext(ctx, "webhook discarded after its last attempt")
		return failLast
	}
	log.InfoContext(ctx, "webhook attempt failed; retrying", "retry_in", d.opts.Schedule.Delay(attempt))
	return failRetry
}

// deliverBatchWorker sends a batch's events in order while the receiver accepts them, within
// a budget of one attempt's timeout for the whole batch. The first event that fails hands
// itself and the rest over to ordinary jobs (deliverWorker), in the transaction that
// completes the batch: the failed one with its first attempt counted and its first retry
// scheduled, the others due at once, so every event keeps the per-event schedule, discard
// count and metrics, and the events already delivered are not sent again. A slow receiver
// does the same once the budget is spent, so a batch holds a worker for at most about two
// timeouts and its events show in the oldest-pending age as any other job's. Should the
// hand-over fail (the database), or the process die mid-batch, the batch is retried whole:
// events already delivered are sent again with the same webhook-id (at least once).
type deliverBatchWorker struct {
	river.WorkerDefaults[DeliverBatchArgs]
	d    *Deliverer
	pool *pgxpool.Pool
}

// handOverTimeout bounds the hand-over's transaction, which runs even when the job's
// context ended (shutdown), so that what was delivered is recorded as delivered.
const handOverTimeout = 5 * time.Second

// Timeout covers the budget, an attempt begun just before it ran out, and the hand-over.
func (w *deliverBatchWorker) Timeout(*river.Job[DeliverBatchArgs]) time.Duration {
	return 2*w.d.opts.Timeout + handOverTimeout + 5*time.Second
}

// NextRetry follows the Schedule (a batch is retried only when its hand-over failed).
func (w *deliverBatchWorker) NextRetry(j *river.Job[DeliverBatchArgs]) time.Time {
	return time.Now().Add(w.d.opts.Schedule.Delay(j.Attempt))
}

func (w *deliverBatchWorker) Work(ctx context.Context, j *river.Job[DeliverBatchArgs]) error {
	msgs := j.Args.Events
	g := w.d.opts.Secret.signer()
	budget := time.Now().Add(w.d.opts.Timeout)
	for i := range msgs {
		if i > 0 && time.Now().After(budget) {
			return w.handOver(ctx, j, nil, msgs[i:])
		}
		msg := msgs[i].message()
		res, err := w.d.send(ctx, msg, g)
		if err == nil {
			w.d.metrics.delivered.WithLabelValues(w.d.metrics.label(msg.Type)).Inc()
			continue
		}
		if ctx.Err() != nil { // stopping, or the job's timeout: not the receiver's answer
			return w.handOver(ctx, j, nil, msgs[i:])
		}
		if w.d.noteFailure(ctx, msg, 1, j.MaxAttempts <= 1, res, err) != failRetry {
			return w.handOver(ctx, j, nil, msgs[i+1:])
		}
		return w.handOver(ctx, j, &msg, msgs[i+1:])
	}
	return nil
}

// handOver queues failed (attempted once) and rest (not attempted) as jobs of their own
// and completes the batch, in one transaction.
func (w *deliverBatchWorker) handOver(ctx context.Context, j *river.Job[DeliverBatchArgs], failed *Message, rest []BatchEvent) error {
	if failed == nil && len(rest) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handOverTimeout)
	defer cancel()
	params := make([]river.InsertManyParams, 0, len(rest)+1)
	if failed != nil {
		params = append(params, river.InsertManyParams{
			Args: DeliverArgs{Message: *failed, Attempted: 1, QueuedAt: j.CreatedAt},
			InsertOpts: &river.InsertOpts{Queue: QueueName, MaxAttempts: j.MaxAttempts - 1,
				ScheduledAt: time.Now().Add(w.d.opts.Schedule.Delay(1))},
		})
	}
	for _, e := range rest {
		params = append(params, river.InsertManyParams{
			Args:       DeliverArgs{Message: e.message(), QueuedAt: j.CreatedAt},
			InsertOpts: &river.InsertOpts{Queue: QueueName, MaxAttempts: j.MaxAttempts},
		})
	}
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if _, err := river.ClientFromContext[pgx.Tx](ctx).InsertManyTx(ctx, tx, params); err != nil {
			return err
		}
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, j)
		return err
	})
	if err != nil {
		return fmt.Errorf("handing %d webhooks of a batch over to jobs of their own: %w", len(params), err)
	}
	return nil
}

// JobLister is the part of the River client the oldest-pending gauge reads.
type JobLister interface {
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
}

// oldestScan is how many of the first pending jobs OldestPending reads: an event a batch
// handed over has a later job id than jobs queued after it, but only by the few batches
// that ran meanwhile.
const oldestScan = 50

// OldestPending returns how long the oldest undelivered event has waited since it was
// queued (0 when none), from the first pending jobs by id.
func OldestPending(ctx context.Context, jobs JobLister) (time.Duration, error) {
	res, err := jobs.JobList(ctx, river.NewJobListParams().Queues(QueueName).Kinds(KindDeliver, KindDeliverBatch).
		States(rivertype.JobStateAvailable, rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStateRunning).
		OrderBy(river.JobListOrderByID, river.SortOrderAsc).First(oldestScan))
	if err != nil {
		return 0, fmt.Errorf("listing pending webhooks: %w", err)
	}
	var oldest time.Duration
	for _, j := range res.Jobs {
		at := j.CreatedAt
		if j.Kind == KindDeliver {
			var a struct {
				QueuedAt time.Time `json:"queued_at"`
			}
			if json.Unmarshal(j.EncodedArgs, &a) == nil && !a.QueuedAt.IsZero() && a.QueuedAt.Before(at) {
				at = a.QueuedAt
			}
		}
		oldest = max(oldest, time.Since(at))
	}
	return oldest, nil
}

// RegisterOldestGauge exports OldestPending as m4sh_webhook_oldest_pending_seconds, read
// from the database at each scrape (with a short timeout; a failed read reports nothing).
func RegisterOldestGauge(reg prometheus.Registerer, jobs JobLister) {
	if reg == nil {
		return
	}
	reg.MustRegister(&oldestCollector{jobs: jobs, desc: prometheus.NewDesc("m4sh_webhook_oldest_pending_seconds",
		"Age of the oldest webhook event not yet delivered nor discarded.", nil, nil)})
}

type oldestCollector struct {
	jobs JobLister
	desc *prometheus.Desc
}

func (c *oldestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *oldestCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	age, err := OldestPending(ctx, c.jobs)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, age.Seconds())
}

type deliveryMetrics struct {
	delivered, failed, discarded *prometheus.CounterVec
}

func newDeliveryMetrics(reg prometheus.Registerer) *deliveryMetrics {
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"type"})
	}
	m := &deliveryMetrics{
		delivered: vec("m4sh_webhook_delivered_total", "Webhook events a receiver accepted (2xx), by event type."),
		failed:    vec("m4sh_webhook_failed_attempts_total", "Webhook attempts that failed (non-2xx, timeout, network), by event type."),
		discarded: vec("m4sh_webhook_discarded_total", "Webhook events given up on (retries exhausted, or 410 Gone), by event type."),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.failed, m.discarded)
	}
	return m
}

// label keeps the metric labels to the known types, whatever a stored job holds.
func (m *deliveryMetrics) label(t string) string {
	for _, k := range Types {
		if k == t {
			return t
		}
	}
	return "other"
}
