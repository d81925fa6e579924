// Package attendance keeps the classroom's record of who attended a session and for how
// long: spans from a user's first connection to their leave, merged across tabs, nodes and
// presence's leave grace, one row write per join and per leave (never per cursor). Spans are
// written from presence transitions through an ordered queue that one writer per process
// drains, many transitions per transaction, so a join never waits for the attendance record
// nor its webhook: for a node alone from the presence hub's transition hook (Transition),
// in a cluster from cluster.Node once the presence change committed (Changed). Each span's
// start and end queue participant.joined and participant.left in the span's own
// transaction, so an event exists exactly when its span does.
//
// What a crash can lose is what the queue held (transitions of the last milliseconds), and
// the sweep puts it back from what presence recorded durably. A node alone tags its spans
// with its cluster.Node's id (a heartbeat row, no presence rows): it ends only its own at
// shutdown, another node alone that a user reconnects to takes that user's span over, and
// the spans of one that was killed are ended at its last heartbeat by the next node's sweep
// (EndDeadNodes). In a cluster the presence rows are the truth the spans follow: every
// sweep opens the span of a user present for longer than Settle without one (at their first
// row's time) and ends, now, the span of a user who has had no row for as long (Reconcile);
// the purge of a dead node's rows ends its users' spans at its last heartbeat.
package attendance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/cluster"
	"github.com/m4sh/backend/internal/page"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/presence"
	"github.com/m4sh/backend/internal/webhook"
)

// Events queues webhook events in a transaction (webhook.Publisher; nil sends nothing).
type Events interface {
	Publish(ctx context.Context, tx pgx.Tx, e webhook.Event) error
	PublishMany(ctx context.Context, tx pgx.Tx, events []webhook.Event) error
}

// Bounds of a lone hub's transition queue.
const (
	// queueSize transitions may wait; a hub recording more waits for the writer (back
	// pressure rather than a lost record).
	queueSize = 4096
	// batchSize transitions at most are written in one transaction.
	batchSize = 256
	// linger is how long the writer waits after a transition for more to write with it
	// (unless the batch fills, a Flush waits or Stop began): under load a transaction then
	// carries tens of transitions rather than one or two, and the database does a fraction
	// of the work per join (statements, commits, the events' insert). A join never waits
	// for it; a span and its webhook are written that much later.
	linger = 20 * time.Millisecond
	// Settle is how long a cluster span may lag behind presence before a sweep writes it
	// (Reconcile): far above the writer's delay, so that the sweep repairs what a crash lost
	// and never races a live writer.
	Settle = 2 * time.Second
)

// Recorder writes attendance spans and queues their events.
type Recorder struct {
	pool   *pgxpool.Pool
	q      *db.Queries
	log    *slog.Logger
	events Events

	// The lone hub's transitions, written in order by one writer (Start, Stop), their
	// spans tagged with node.
	node     *uuid.UUID
	cluster  bool // StartCluster: Reconcile repairs spans from presence rows
	queue    chan transition
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	// flushCtx is the writes' parent context, cancelled when Stop gives up, so that a write
	// in flight does not outlast the shutdown's budget holding a pool connection.
	flushCtx   context.Context
	abortFlush context.CancelFunc
	started    atomic.Bool // the writer runs (Start, StartCluster)

	written, lost, reconciled atomic.Int64 // metrics.go

	// pending counts each user's cluster transitions (Changed) queued and not yet written:
	// whether an arrival the writer gets to after the user left is followed by this node's
	// own departure (a short visit, written whole) or is over on another node (nothing).
	pendingMu sync.Mutex
	pending   map[userKey]int
}

// userKey is a user in a session.
type userKey struct {
	session uuid.UUID
	user    string
}

// transition is one presence transition of a lone hub, waiting to be written.
type transition struct {
	session uuid.UUID
	user    presence.User
	joined  bool
	at      time.Time
	node    *uuid.UUID // the node alone that records it; nil in a cluster
	// cluster: queued by Changed (counted in pending). Such an arrival with none of the
	// user's transitions queued after it opens a span only while the user has a presence
	// row: otherwise the user left the cluster on another node before this writer got to
	// it, and the span would stay open until a sweep ended it.
	cluster bool
	live    bool // set by apply: a cluster arrival to open only beside a presence row
	// written, on a Flush marker (no transition), is closed once what came before is written.
	written chan struct{}
}

// New returns a Recorder over pool; events may be nil (webhooks off).
func New(pool *pgxpool.Pool, log *slog.Logger, events Events) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if events == nil {
		events = (*webhook.Publisher)(nil)
	}
	flushCtx, abort := context.WithCancel(context.Background())
	return &Recorder{pool: pool, q: db.New(pool), log: log, events: events, pending: map[userKey]int{},
		queue: make(chan transition, queueSize), stop: make(chan struct{}), done: make(chan struct{}),
		flushCtx: flushCtx, abortFlush: abort}
}

// Arrived opens u's span in the session in tx, unless one is open (another node's tab, a
// race already settled) or the session is not a classroom session, and queues
// participant.joined with it.
func (r *Recorder) Arrived(ctx context.Context, tx pgx.Tx, session uuid.UUID, u presence.User) error {
	return r.apply(ctx, tx, []transition{{session: session, user: u, joined: true, at: time.Now()}})
}

// Departed closes the user's open span at at (now when zero), and queues participant.left;
// with no open span it does nothing.
func (r *Recorder) Departed(ctx context.Context, tx pgx.Tx, session uuid.UUID, userID string, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	return r.apply(ctx, tx, []transition{{session: session, user: presence.User{UserID: userID}, at: at}})
}

// apply writes transitions in tx, in order for each user, with their events in one insert.
// The i-th transition of each user goes to the i-th round, and each round is one statement
// opening spans and one closing them, whatever the number of users: a batch of joins and
// leaves of different users costs four statements, not one per transition.
func (r *Recorder) apply(ctx context.Context, tx pgx.Tx, ts []transition) error {
	var rounds [][]transition
	seen := make(map[userKey]int, len(ts))
	for _, t := range ts {
		if t.written != nil {
			continue // a Flush marker
		}
		k := userKey{t.session, t.user.UserID}
		i := seen[k]
		seen[k] = i + 1
		if i == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[i] = append(rounds[i], t)
	}
	r.pendingMu.Lock()
	for i, round := range rounds {
		for j, t := range round {
			// No transition of the user queued after this one, in ts or behind it.
			round[j].live = t.cluster && t.joined && r.pending[userKey{t.session, t.user.UserID}] <= i+1
		}
	}
	r.pendingMu.Unlock()
	q := r.q.WithTx(tx)
	var events []webhook.Event
	for _, round := range rounds {
		var open db.AttendanceSpanOpenManyParams
		var closing db.AttendanceSpanCloseManyParams
		for _, t := range round {
			node := uuid.Nil // untagged: a cluster's span, any node's
			if t.node != nil {
				node = *t.node
			}
			if t.joined {
				open.SessionIds = append(open.SessionIds, t.session)
				open.UserIds = append(open.UserIds, t.user.UserID)
				open.Names = append(open.Names, t.user.Name)
				open.Roles = append(open.Roles, t.user.Role)
				open.JoinedAts = append(open.JoinedAts, t.at)
				open.NodeIds = append(open.NodeIds, node)
				open.Live = append(open.Live, t.live)
			} else {
				closing.SessionIds = append(closing.SessionIds, t.session)
				closing.UserIds = append(closing.UserIds, t.user.UserID)
				closing.LeftAts = append(closing.LeftAts, t.at)
				closing.NodeIds = append(closing.NodeIds, node)
			}
		}
		if len(open.SessionIds) > 0 {
			rows, err := q.AttendanceSpanOpenMany(ctx, open)
			if err != nil {
				return fmt.Errorf("opening attendance spans: %w", err)
			}
			for _, row := range rows {
				if row.Opened { // not: another node's span, taken over (the user never left)
					events = append(events, joinedEvent(row.ClassroomID, row.SessionID, row.UserID, row.Role, row.JoinedAt))
				}
			}
		}
		if len(closing.SessionIds) > 0 {
			rows, err := q.AttendanceSpanCloseMany(ctx, closing)
			if err != nil {
				return fmt.Errorf("closing attendance spans: %w", err)
			}
			for _, row := range rows {
				events = append(events, leftEvent(db.AttendanceSpanCloseDeadRow(row)))
			}
		}
	}
	return r.events.PublishMany(ctx, tx, events)
}

var _ cluster.Recorder = (*Recorder)(nil)

// Transition queues a presence transition of a hub alone (presence.Options.OnTransition)
// with the time it happened; the writer started by Start records it. The hub calls it under
// the room's lock, so one user's transitions are queued, and written, in order. After Stop
// it is dropped (CloseOwn ends what is still open).
func (r *Recorder) Transition(_ context.Context, session uuid.UUID, u presence.User, joined bool) {
	r.enqueue(transition{session: session, user: u, joined: joined, at: time.Now(), node: r.node})
}

// Changed queues a user's first arrival in the cluster or last departure from it, at at,
// once the presence change committed (cluster.Recorder); the writer records it untagged.
// cluster.Node calls it under the hub's room lock, so this node's transitions of a user are
// written in order; one written after the user arrived again elsewhere is stale and ends
// nothing (AttendanceSpanClose). Lost by a crash or after Stop, Reconcile writes it.
func (r *Recorder) Changed(session uuid.UUID, u presence.User, joined bool, at time.Time) {
	t := transition{session: session, user: u, joined: joined, at: at, cluster: true}
	r.count(t, 1)
	if !r.enqueue(t) {
		r.count(t, -1)
	}
}

// count adds n to the pending transitions of t's user, if t came from Changed.
func (r *Recorder) count(t transition, n int) {
	if !t.cluster {
		return
	}
	k := userKey{t.session, t.user.UserID}
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	if r.pending[k] += n; r.pending[k] <= 0 {
		delete(r.pending, k)
	}
}

// enqueue queues t for the writer; after Stop it is dropped, logged and counted lost.
func (r *Recorder) enqueue(t transition) bool {
	select {
	case <-r.stop: // checked first: a queue with room after Stop is never drained
	default:
		select {
		case r.queue <- t:
			return true
		case <-r.stop:
		}
	}
	r.lost.Add(1)
	r.log.Warn("attendance: presence transition after shutdown not recorded", "session", t.session, "user", t.user.UserID, "joined", t.joined)
	return false
}

// Start runs the writer of the queue until Stop for a node alone (Transition), its spans
// tagged with node: the id of its cluster.Node (heartbeat and sweep only).
func (r *Recorder) Start(node uuid.UUID) {
	r.node = &node
	r.started.Store(true)
	go r.write()
}

// StartCluster runs the writer of the queue until Stop for a node of a cluster (Changed),
// and lets Reconcile repair its spans from the presence rows. Call it before the Node's
// Start, whose first sweep reconciles.
func (r *Recorder) StartCluster() {
	r.cluster = true
	r.started.Store(true)
	go r.write()
}

// Flush waits until every transition queued before it is written, or ctx ends.
func (r *Recorder) Flush(ctx context.Context) error {
	m := transition{written: make(chan struct{})}
	select {
	case r.queue <- m:
	case <-r.stop:
		return errors.New("attendance: stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-m.written:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop writes what is queued and ends the writer, or gives up when ctx ends: then the write
// in flight is cancelled (what was queued is lost, as after a crash: see Reconcile) and Stop
// returns once the writer has let go of the database.
func (r *Recorder) Stop(ctx context.Context) {
	r.stopOnce.Do(func() { close(r.stop) })
	select {
	case <-r.done:
	case <-ctx.Done():
		r.abortFlush()
		if r.started.Load() {
			<-r.done
		}
	}
}

func (r *Recorder) write() {
	defer close(r.done)
	batch := make([]transition, 0, batchSize)
	wait := time.NewTimer(linger)
	for {
		stopping := false
		select {
		case t := <-r.queue:
			batch = append(batch[:0], t)
		case <-r.stop:
			batch, stopping = batch[:0], true
		}
		wait.Reset(linger)
		hurry := stopping || (len(batch) > 0 && batch[0].written != nil)
	fill:
		for len(batch) < batchSize {
			if hurry { // take what is queued, wait for nothing
				select {
				case t := <-r.queue:
					batch = append(batch, t)
					continue
				default:
					break fill
				}
			}
			select {
			case t := <-r.queue:
				batch = append(batch, t)
				hurry = t.written != nil
			case <-wait.C:
				break fill
			case <-r.stop:
				stopping, hurry = true, true
			}
		}
		if len(batch) > 0 {
			r.flush(batch)
		}
		for _, t := range batch {
			if t.written != nil {
				close(t.written)
			}
		}
		if stopping && len(r.queue) == 0 {
			return
		}
	}
}

// flush writes a batch in one transaction, its events queued with one insert; when that
// fails, each transition in one of its own, so that one bad row costs only its own record
// (logged).
func (r *Recorder) flush(batch []transition) {
	ctx, cancel := context.WithTimeout(r.flushCtx, 30*time.Second)
	defer cancel()
	err := postgres.InTx(ctx, r.pool, func(tx pgx.Tx) error { return r.apply(ctx, tx, batch) })
	if err == nil {
		r.written.Add(int64(transitions(batch)))
		r.uncount(batch)
		return
	}
	r.log.Warn("attendance: writing a batch of presence transitions; retrying one by one", "transitions", len(batch), "err", err)
	for i := range batch {
		err := postgres.InTx(ctx, r.pool, func(tx pgx.Tx) error { return r.apply(ctx, tx, batch[i:i+1]) })
		r.uncount(batch[i : i+1])
		if n := int64(transitions(batch[i : i+1])); err != nil {
			t := batch[i]
			r.lost.Add(n)
			r.log.Error("attendance: presence transition not recorded", "session", t.session, "user", t.user.UserID, "joined", t.joined, "err", err)
		} else {
			r.written.Add(n)
		}
	}
}

// uncount takes written (or lost) transitions off pending.
func (r *Recorder) uncount(batch []transition) {
	for _, t := range batch {
		r.count(t, -1)
	}
}

// transitions counts the transitions of a batch (Flush markers are none).
func transitions(batch []transition) int {
	n := 0
	for _, t := range batch {
		if t.written == nil {
			n++
		}
	}
	return n
}

// CloseOwn ends the spans this node alone opened that are still open, now, with their
// participant.left: at shutdown, after Stop. Spans another node took over stay open.
func (r *Recorder) CloseOwn(ctx context.Context) error {
	if r.node == nil {
		return nil
	}
	return postgres.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := r.q.WithTx(tx).AttendanceSpanCloseNode(ctx, r.node)
		if err != nil {
			return fmt.Errorf("closing attendance spans: %w", err)
		}
		events := make([]webhook.Event, len(rows))
		for i, row := range rows {
			events[i] = leftEvent(db.AttendanceSpanCloseDeadRow(row))
		}
		return r.events.PublishMany(ctx, tx, events)
	})
}

// EndDeadNodes ends the spans of nodes alone silent for maxAge (killed) at their last
// heartbeat, with their participant.left (cluster.Recorder: every sweep calls it).
func (r *Recorder) EndDeadNodes(ctx context.Context, maxAge time.Duration) error {
	return postgres.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := r.q.WithTx(tx).AttendanceSpanCloseDead(ctx, pgtype.Interval{Microseconds: maxAge.Microseconds(), Valid: true})
		if err != nil {
			return fmt.Errorf("closing dead nodes' attendance spans: %w", err)
		}
		if len(rows) > 0 {
			r.log.Info("attendance: ended the spans of a dead node alone", "spans", len(rows))
		}
		events := make([]webhook.Event, len(rows))
		for i, row := range rows {
			events[i] = leftEvent(row)
		}
		return r.events.PublishMany(ctx, tx, events)
	})
}

// Reconcile makes the cluster's open spans follow its presence rows, in one transaction
// with their events (cluster.Recorder: every sweep calls it before purging dead rows): a
// user with rows since Settle ago and no open span gets one from their first row's time (its
// start was lost); an open span whose user has had no row for as long ends now (its end was
// lost). It does nothing but for a cluster (StartCluster): nodes alone have no presence rows.
func (r *Recorder) Reconcile(ctx context.Context) error {
	if !r.cluster {
		return nil
	}
	settle := pgtype.Interval{Microseconds: Settle.Microseconds(), Valid: true}
	return postgres.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		q := r.q.WithTx(tx)
		opened, err := q.AttendanceSpanReopenPresent(ctx, settle)
		if err != nil {
			return fmt.Errorf("opening attendance spans of present users: %w", err)
		}
		closed, err := q.AttendanceSpanCloseAbsent(ctx, settle)
		if err != nil {
			return fmt.Errorf("ending attendance spans of absent users: %w", err)
		}
		if len(opened)+len(closed) == 0 {
			return nil
		}
		r.log.Warn("attendance: spans written by the sweep (a crash lost their queued transitions)", "opened", len(opened), "ended", len(closed))
		r.reconciled.Add(int64(len(opened) + len(closed)))
		events := make([]webhook.Event, 0, len(opened)+len(closed))
		for _, row := range opened {
			events = append(events, joinedEvent(row.ClassroomID, row.SessionID, row.UserID, row.Role, row.JoinedAt))
		}
		for _, row := range closed {
			events = append(events, leftEvent(db.AttendanceSpanCloseDeadRow(row)))
		}
		return r.events.PublishMany(ctx, tx, events)
	})
}

func joinedEvent(classroom, session uuid.UUID, user, role string, at time.Time) webhook.Event {
	return webhook.Event{Type: webhook.ParticipantJoined, At: at, Data: webhook.ParticipantData{
		ClassroomID: classroom, SessionID: session, UserID: user, Role: role, JoinedAt: at,
	}}
}

func leftEvent(row db.AttendanceSpanCloseDeadRow) webhook.Event {
	return webhook.Event{Type: webhook.ParticipantLeft, At: row.LeftAt, Data: webhook.ParticipantData{
		ClassroomID: row.ClassroomID, SessionID: row.SessionID, UserID: row.UserID, Role: row.Role, JoinedAt: row.JoinedAt, LeftAt: &row.LeftAt,
	}}
}

// Row is one user's attendance in a session: their spans merged.
type Row struct {
	UserID         string
	Name           string
	Role           string
	FirstJoinedAt  time.Time
	LastLeftAt     *time.Time // nil while connected
	PresentSeconds int64      // an open span counts up to now
	Joins          int
}

// List returns one page of a session's attendance, newest first join first. The caller
// checks who may read it.
func (r *Recorder) List(ctx context.Context, session uuid.UUID, p page.Request) ([]Row, *string, error) {
	before, id := p.Bounds()
	rows, err := r.q.AttendanceSessionList(ctx, db.AttendanceSessionListParams{SessionID: session, BeforeTime: before, BeforeID: id, Lim: p.FetchLimit()})
	if err != nil {
		return nil, nil, postgres.Interpret(err, "attendance")
	}
	rows, next := page.Next(p, rows, func(r db.AttendanceSessionListRow) page.Cursor {
		return page.Cursor{Time: r.FirstJoinedAt, ID: r.FirstSpanID}
	})
	out := make([]Row, len(rows))
	for i, row := range rows {
		out[i] = Row{UserID: row.UserID, Name: row.Name, Role: row.Role, FirstJoinedAt: row.FirstJoinedAt,
			PresentSeconds: row.PresentSeconds, Joins: int(row.Joins)}
		if !row.Connected {
			out[i].LastLeftAt = &row.LastLeftAt
		}
	}
	return out, next, nil
}
