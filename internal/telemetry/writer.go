package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is where the writer puts events: PostgreSQL in production (PGStore).
type Store interface {
	// CopyEvents stores events in one batch (all or nothing) and returns how many it stored.
	CopyEvents(ctx context.Context, events []Event) (int64, error)
	// EnsurePartitions creates the missing daily partitions of days first .. first+days-1.
	EnsurePartitions(ctx context.Context, first time.Time, days int) (int, error)
}

// WriterOptions configure a Writer. Zero values take the defaults in parentheses.
//
// Batches of thousands rather than hundreds, because PostgreSQL pays a cost per COPY statement
// that grows with the square of the rows it buffers before each multi-insert (up to 64 KiB,
// a few hundred of our rows): each buffered row's slot pins the table's tuple descriptor in
// the transaction's resource owner, whose hash puts identical entries in one probe chain.
// Profiled on PostgreSQL 15, that was a quarter of its CPU per event at 1,000 events per COPY
// and under a tenth at 5,000 (BENCHMARKS.md, Telemetry). The buffer holds a batch being
// written plus the next one filling.
type WriterOptions struct {
	BufferEvents  int           // events buffered at most (20,000)
	BufferBytes   int           // approximate bytes buffered at most (16 MiB)
	FlushEvents   int           // a flush starts once this many events wait (5,000)
	FlushInterval time.Duration // and at least this often (1s)
	WriteTimeout  time.Duration // bound on one COPY (10s)
	MaxBackoff    time.Duration // longest wait between attempts while the database fails (10s)
}

func (o *WriterOptions) defaults() {
	if o.BufferEvents <= 0 {
		o.BufferEvents = 20_000
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = 16 << 20
	}
	if o.FlushEvents <= 0 {
		o.FlushEvents = 5_000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
}

// Drop reasons, the `reason` label of m4sh_telemetry_events_dropped_total.
const (
	DropBufferFull = "buffer_full" // the buffer was full when the request came
	DropRejected   = "rejected"    // the database refused the row itself (never retried)
	DropShutdown   = "shutdown"    // still unwritten when the shutdown deadline passed
	DropClosed     = "closed"      // submitted after Close
)

// Writer stores events best-effort and never blocks its callers: Submit appends to a bounded
// in-memory buffer (or drops and counts when it is full) and one goroutine flushes the buffer
// with COPY every FlushEvents events or FlushInterval, whichever comes first.
//
// While the database fails, the batch in hand is kept and retried with exponential back-off;
// new events keep filling the buffer until it is full and are dropped from then on, so memory
// stays bounded (at most the buffer plus the batch in hand) and requests keep succeeding.
// Rows the database rejects as data (which validation upstream should make impossible) are
// isolated by bisecting the batch and dropped, so that one bad row never blocks the rest.
// Close flushes what is left within its context's deadline.
type Writer struct {
	store Store
	log   *slog.Logger
	opts  WriterOptions
	m     writerMetrics

	mu       sync.Mutex
	buf      []Event
	spare    []Event
	bufBytes int
	closed   bool

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopCtx  context.Context // the Close deadline, read by run after stop closes
	stopOnce sync.Once
}

type writerMetrics struct {
	received, stored, flushErrors prometheus.Counter
	dropped                       *prometheus.CounterVec
	flushSeconds                  prometheus.Histogram
}

// NewWriter starts a Writer over store; Close stops it. Its metrics are registered on reg.
func NewWriter(store Store, o WriterOptions, reg prometheus.Registerer, log *slog.Logger) *Writer {
	o.defaults()
	w := &Writer{
		store: store,
		log:   log,
		opts:  o,
		buf:   make([]Event, 0, min(o.BufferEvents, o.FlushEvents)),
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		m: writerMetrics{
			received: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "m4sh_telemetry_events_received_total",
				Help: "Telemetry events accepted into the write buffer.",
			}),
			stored: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "m4sh_telemetry_events_stored_total",
				Help: "Telemetry events written to the database.",
			}),
			flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "m4sh_telemetry_flush_errors_total",
				Help: "Failed telemetry COPY attempts (the batch is retried).",
			}),
			dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "m4sh_telemetry_events_dropped_total",
				Help: "Telemetry events dropped, by reason: buffer_full, rejected, shutdown, closed.",
			}, []string{"reason"}),
			flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name:    "m4sh_telemetry_flush_duration_seconds",
				Help:    "Duration of successful telemetry COPY batches.",
				Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			}),
		},
	}
	for _, r := range []string{DropBufferFull, DropRejected, DropShutdown, DropClosed} {
		w.m.dropped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(w.m.received, w.m.stored, w.m.flushErrors, w.m.dropped, w.m.flushSeconds,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "m4sh_telemetry_buffered_events",
				Help: "Telemetry events waiting in the write buffer.",
			}, func() float64 { return float64(w.Buffered()) }))
	}
	go w.run()
	return w
}

// Submit queues events for storage without blocking and returns how many of them were
// dropped because the buffer was full (or the writer closed).
func (w *Writer) Submit(events []Event) (dropped int) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.m.dropped.WithLabelValues(DropClosed).Add(float64(len(events)))
		return len(events)
	}
	accepted := 0
	for i := range events {
		sz := events[i].size()
		if len(w.buf) >= w.opts.BufferEvents || w.bufBytes+sz > w.opts.BufferBytes {
			break
		}
		w.buf = append(w.buf, events[i])
		w.bufBytes += sz
		accepted++
	}
	full := len(w.buf) >= w.opts.FlushEvents
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	w.m.received.Add(float64(accepted))
	if dropped = len(events) - accepted; dropped > 0 {
		w.m.dropped.WithLabelValues(DropBufferFull).Add(float64(dropped))
	}
	return dropped
}

// Buffered is how many events wait in the buffer.
func (w *Writer) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

// Close stops accepting events and writes what is buffered, giving up (and counting the rest
// as dropped) when ctx ends. It is safe to call more than once.
func (w *Writer) Close(ctx context.Context) error {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		w.stopCtx = ctx
		close(w.stop)
	})
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take swaps the buffer for the spare one and returns what was buffered.
func (w *Writer) take() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	batch := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.bufBytes = 0
	return batch
}

// recycle keeps a written batch's array as the next spare buffer.
func (w *Writer) recycle(batch []Event) {
	clear(batch)
	w.mu.Lock()
	if w.spare == nil {
		w.spare = batch[:0]
	}
	w.mu.Unlock()
}

func (w *Writer) run() {
	defer close(w.done)
	ticker := time.NewTicker(w.opts.FlushInterval)
	defer ticker.Stop()
	var (
		pending []Event // the batch in hand: taken from the buffer, not yet written
		retryAt time.Time
		backoff time.Duration
	)
	for {
		select {
		case <-w.stop:
			w.drain(pending)
			return
		case <-ticker.C:
		case <-w.kick:
		}
		for {
			if time.Now().Before(retryAt) {
				break
			}
			if len(pending) == 0 {
				pending = w.take()
			}
			if len(pending) == 0 {
				break
			}
			n, err := w.write(context.Background(), pending)
			if err != nil {
				pending = pending[n:]
				backoff = min(max(2*backoff, w.opts.FlushInterval/4), w.opts.MaxBackoff)
				retryAt = time.Now().Add(backoff)
				w.log.Warn("telemetry: writing events failed; retrying", "events", len(pending), "retry_in", backoff, "err", err)
				break
			}
			if backoff > 0 {
				w.log.Info("telemetry: writing events again")
			}
			backoff, retryAt = 0, time.Time{}
			w.recycle(pending)
			pending = nil
			if w.Buffered() < w.opts.FlushEvents {
				break
			}
		}
	}
}

// drain writes pending and the buffer until both are empty or the Close deadline passes.
func (w *Writer) drain(pending []Event) {
	ctx := w.stopCtx
	backoff := 50 * time.Millisecond
	for {
		if len(pending) == 0 {
			pending = w.take()
		}
		if len(pending) == 0 {
			return
		}
		n, err := w.write(ctx, pending)
		pending = pending[n:]
		if err == nil {
			continue
		}
		w.log.Warn("telemetry: flushing on shutdown failed", "events", len(pending), "err", err)
		select {
		case <-ctx.Done():
			lost := len(pending) + len(w.take())
			w.m.dropped.WithLabelValues(DropShutdown).Add(float64(lost))
			w.log.Error("telemetry: events lost at shutdown", "events", lost)
			return
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
		}
	}
}

// write stores batch, isolating rows the database rejects. It returns how many events from
// the start of batch are done with (stored or rejected); on error the rest must be retried.
func (w *Writer) write(ctx context.Context, batch []Event) (int, error) {
	err := w.copy(ctx, batch)
	if isMissingPartition(err) {
		if perr := w.ensurePartitions(ctx, batch); perr != nil {
			return 0, errors.Join(err, perr)
		}
		err = w.copy(ctx, batch)
	}
	switch {
	case err == nil:
		return len(batch), nil
	case !isDataError(err):
		w.m.flushErrors.Inc()
		return 0, err
	case len(batch) == 1:
		w.m.dropped.WithLabelValues(DropRejected).Inc()
		w.log.Error("telemetry: the database rejected an event; dropped", "name", batch[0].Name, "err", err)
		return 1, nil
	}
	mid := len(batch) / 2
	n, err := w.write(ctx, batch[:mid])
	if err != nil {
		return n, err
	}
	m, err := w.write(ctx, batch[mid:])
	return mid + m, err
}

func (w *Writer) copy(ctx context.Context, batch []Event) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
	defer cancel()
	start := time.Now()
	n, err := w.store.CopyEvents(ctx, batch)
	if err != nil {
		return err
	}
	w.m.flushSeconds.Observe(time.Since(start).Seconds())
	w.m.stored.Add(float64(n))
	return nil
}

// ensurePartitions creates the partitions of the days batch was received on, for when the
// periodic job has not (yet) run — a fresh database restored from an old dump, say.
func (w *Writer) ensurePartitions(ctx context.Context, batch []Event) error {
	first, last := batch[0].ReceivedAt, batch[0].ReceivedAt
	for i := range batch {
		if t := batch[i].ReceivedAt; t.Before(first) {
			first = t
		} else if t.After(last) {
			last = t
		}
	}
	first, last = Day(first), Day(last)
	days := int(last.Sub(first)/(24*time.Hour)) + 1
	ctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
	defer cancel()
	n, err := w.store.EnsurePartitions(ctx, first, days)
	if err == nil {
		w.log.Info("telemetry: created missing partitions", "from", first.Format(time.DateOnly), "days", days, "created", n)
	}
	return err
}

// isMissingPartition recognises "no partition of relation … found for row".
func isMissingPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.HasPrefix(pgErr.Message, "no partition of relation")
}

// isDataError reports errors caused by the rows themselves (data exceptions, integrity
// violations, program limits such as nesting too deep): retrying the same rows cannot help.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || isMissingPartition(err) {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// Day is the UTC day t falls on, as midnight UTC.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
