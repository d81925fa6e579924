// Package cluster is this process's membership in a cluster of identical nodes sharing one
// PostgreSQL: a random node id, a heartbeat row refreshed every HeartbeatInterval, and the
// presence rows (presence.Directory) that let every node answer who is in a session. Rows
// of a node silent for longer than PurgeAfter (and the leave grace) are deleted by any live
// node, which reports each user who thereby left the session entirely (OnDeparted publishes
// the leave). A node stopping cleanly is one more dead node, whose last heartbeat is its
// stop: its users have the leave grace to reconnect elsewhere. A Recorder (attendance) is
// told of each user's first arrival and last departure in the cluster once the transaction
// that decides it committed, and of a dead node's users inside the sweep's transaction.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/presence"
)

// Options configure a Node.
type Options struct {
	Log               *slog.Logger
	HeartbeatInterval time.Duration // default 10s
	PurgeAfter        time.Duration // default 30s
	// LeaveGrace is presence's leave grace (WS_LEAVE_GRACE): a dead node's users are purged
	// no sooner than this after its last heartbeat (PurgeAfter is raised to it), so that one
	// who reconnects to another node within it is never seen to leave.
	LeaveGrace time.Duration
	// Recorder, when set, is told of each user's first arrival in a session and last
	// departure from it across the cluster (see Recorder).
	Recorder Recorder
	// OnDeparted is called for each user whose last presence row was purged with a dead
	// node; the caller publishes the leave.
	OnDeparted func(session uuid.UUID, userID string)
	// OnPurged is called when this node finds it was purged by the others (it could not
	// beat for PurgeAfter, e.g. cut off from the database) while its connections stayed
	// open: the caller records them again (presence.Hub.Reassert).
	OnPurged func(ctx context.Context)
	// OpTimeout bounds each presence write (default 5s).
	OpTimeout time.Duration
}

// Recorder records users arriving in and departing from sessions across the cluster
// (attendance). A live node's arrivals and departures are handed to Changed after their
// transaction committed, under the hub's room lock (in order for one user on one node): the
// presence transaction holds nothing of the record, which is written later and may be lost
// by a crash; Reconcile, at every sweep, repairs the record from the presence rows. A dead
// node's users depart inside the sweep's transaction (Departed), at its last heartbeat: its
// error rolls the purge of that row back, and the next sweep retries it.
type Recorder interface {
	// Changed: the user's first connection in the cluster (joined) or last one went, at at.
	Changed(session uuid.UUID, u presence.User, joined bool, at time.Time)
	// Departed: the user's last connection in the cluster was on a dead node whose rows
	// are being purged in tx, at at (its last heartbeat; now when zero).
	Departed(ctx context.Context, tx pgx.Tx, session uuid.UUID, userID string, at time.Time) error
	// Reconcile writes what Changed was told and a crash lost, from the presence rows, in
	// a transaction of its own; every sweep calls it before it purges dead nodes' rows.
	Reconcile(ctx context.Context) error
	// EndDeadNodes ends what nodes silent for maxAge left open beside their presence rows
	// (the spans of a node alone), in a transaction of its own; every sweep calls it before
	// it deletes dead nodes' heartbeat rows.
	EndDeadNodes(ctx context.Context, maxAge time.Duration) error
}

// Node is this process in the cluster.
type Node struct {
	id   uuid.UUID
	pool *pgxpool.Pool
	q    *db.Queries
	o    Options

	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	started atomic.Bool
	stopped atomic.Bool // Stop has begun: Depart leaves the rows to the others' sweep

	purgedRows, selfPurged atomic.Int64 // metrics.go

	// pending holds the departures whose transaction failed, with their time: the loop
	// retries them, so that a live node never keeps the row of a user who left (shown
	// present, counted by the caps, their span open). An arrival of the user drops theirs.
	pmu     sync.Mutex
	pending map[userKey]time.Time
}

type userKey struct {
	session uuid.UUID
	user    string
}

// New returns a Node with a fresh id; Start begins its heartbeat.
func New(pool *pgxpool.Pool, o Options) *Node {
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 10 * time.Second
	}
	if o.PurgeAfter <= 0 {
		o.PurgeAfter = 30 * time.Second
	}
	// A node counts as dead only once its users' grace is over: until then the others keep
	// its rows (a user who comes back elsewhere is still present, never left).
	o.PurgeAfter = max(o.PurgeAfter, o.LeaveGrace)
	if o.OpTimeout <= 0 {
		o.OpTimeout = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.OnDeparted == nil {
		o.OnDeparted = func(uuid.UUID, string) {}
	}
	if o.OnPurged == nil {
		o.OnPurged = func(context.Context) {}
	}
	return &Node{id: uuid.New(), pool: pool, q: db.New(pool), o: o, stop: make(chan struct{}), done: make(chan struct{}),
		pending: map[userKey]time.Time{}}
}

// SetHooks sets Options.OnDeparted and OnPurged when they could not be given to New: the
// presence hub that handles them is built with the Node as its directory. Call it before Start.
func (n *Node) SetHooks(departed func(session uuid.UUID, userID string), purged func(ctx context.Context)) {
	n.o.OnDeparted, n.o.OnPurged = departed, purged
}

// ID is this node's id.
func (n *Node) ID() uuid.UUID { return n.id }

// Start records the first heartbeat and sweeps once (the rows of nodes that died while
// none was running are gone before this one serves), then keeps beating and sweeping until
// Stop. A sweep runs twice per heartbeat interval so that a dead node's users leave at most
// PurgeAfter + HeartbeatInterval/2 after its last heartbeat. A failed first heartbeat or
// sweep (the schema not migrated yet: /readyz says so) is logged and retried by the loop.
func (n *Node) Start(ctx context.Context) {
	var lastBeat time.Time
	bctx, cancel := context.WithTimeout(ctx, n.o.OpTimeout)
	if _, err := n.q.PresenceNodeHeartbeat(bctx, n.heartbeatParams()); err != nil {
		n.o.Log.WarnContext(ctx, "cluster: first heartbeat", "err", err)
	} else {
		lastBeat = time.Now()
		if err := n.Sweep(bctx); err != nil {
			n.o.Log.WarnContext(ctx, "cluster: purging dead nodes", "err", err)
		}
	}
	cancel()
	n.started.Store(true)
	go n.loop(lastBeat)
}

func (n *Node) heartbeatParams() db.PresenceNodeHeartbeatParams {
	return db.PresenceNodeHeartbeatParams{NodeID: n.id, MaxAge: interval(n.o.PurgeAfter)}
}

func (n *Node) loop(lastBeat time.Time) {
	defer close(n.done)
	sweep := time.NewTicker(n.o.HeartbeatInterval / 2)
	defer sweep.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-sweep.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.o.OpTimeout)
		if time.Since(lastBeat) >= n.o.HeartbeatInterval-n.o.HeartbeatInterval/4 {
			if stale, err := n.q.PresenceNodeHeartbeat(ctx, n.heartbeatParams()); err != nil {
				n.o.Log.Warn("cluster: heartbeat", "err", err)
			} else {
				if stale && !lastBeat.IsZero() {
					n.o.Log.Warn("cluster: this node was purged by the others; recording its connections again")
					n.selfPurged.Add(1)
					n.o.OnPurged(ctx)
				}
				lastBeat = time.Now()
			}
		}
		if err := n.retryDeparts(ctx); err != nil {
			n.o.Log.Warn("cluster: removing presence of users who left; retried at the next tick", "err", err)
		}
		if err := n.Sweep(ctx); err != nil {
			n.o.Log.Warn("cluster: purging dead nodes", "err", err)
		}
		cancel()
	}
}

// Stop ends the heartbeat with a last one, at the stop, and leaves this node's presence rows
// in place: to the others, its users are then exactly as after a crash whose last heartbeat
// was the stop. One who reconnects to another node within the leave grace (a rolling
// restart closes WebSockets with 1001) is still present there, so the others see no leave
// and no join, and their attendance span goes on; the others' sweep removes the rows after
// PurgeAfter (at least the grace), publishing the leave of those who did not come back, whose
// attendance ends at the stop. Depart does nothing once Stop has begun (a grace that runs
// out during shutdown is the sweep's to end). A node with no rows left removes its heartbeat.
func (n *Node) Stop(ctx context.Context) {
	n.once.Do(func() {
		n.stopped.Store(true)
		close(n.stop)
		if n.started.Load() {
			select {
			case <-n.done:
			case <-ctx.Done():
			}
		}
		if err := n.retryDeparts(ctx); err != nil {
			// Those rows stay for the others' sweep, which ends them at the last heartbeat.
			n.o.Log.Warn("cluster: removing presence of users who left", "err", err)
		}
		if err := n.q.PresenceNodeStop(ctx, n.id); err != nil {
			// The previous heartbeat stands as the last one.
			n.o.Log.Warn("cluster: last heartbeat", "err", err)
		}
		if err := n.q.PresenceNodeDelete(ctx, n.id); err != nil {
			n.o.Log.Warn("cluster: deleting this node's heartbeat", "err", err)
		}
	})
}

// Crash stops the heartbeat and leaves the rows behind, as a killed process does (tests).
func (n *Node) Crash() {
	n.once.Do(func() {
		close(n.stop)
		if n.started.Load() {
			<-n.done
		}
	})
}

func interval(d time.Duration) pgtype.Interval {
	return pgtype.Interval{Microseconds: d.Microseconds(), Valid: true}
}

// sweepBatch bounds the dead rows one Sweep reads; the next sweep takes the rest.
const sweepBatch = 1000

// Sweep deletes the presence rows of nodes silent for PurgeAfter, one user at a time, and
// calls OnDeparted for each user left with no row in a session (the Recorder, if any, sees
// the departure at the dead node's last heartbeat, in the same transaction). Concurrent
// sweeps on several nodes delete each row once, so each leave is reported by one node. A
// row that fails is left for the next sweep and the others are still swept; the errors are
// returned together. The Recorder's Reconcile runs first (while a dead node's rows still
// say who was there), its EndDeadNodes last (the spans of dead nodes alone).
func (n *Node) Sweep(ctx context.Context) error {
	var errs []error
	if n.o.Recorder != nil {
		if err := n.o.Recorder.Reconcile(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	rows, err := n.q.PresenceDeadRows(ctx, db.PresenceDeadRowsParams{MaxAge: interval(n.o.PurgeAfter), Lim: sweepBatch})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing dead nodes' presence: %w", err))...)
	}
	for _, r := range rows {
		left, err := n.sweepRow(ctx, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("session %s user %q: %w", r.SessionID, r.UserID, err))
			continue
		}
		if left {
			n.o.Log.Info("cluster: user left with a dead node", "session", r.SessionID, "user", r.UserID)
			n.o.OnDeparted(r.SessionID, r.UserID)
		}
	}
	if n.o.Recorder != nil {
		if err := n.o.Recorder.EndDeadNodes(ctx, n.o.PurgeAfter); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.q.PresenceNodePurge(ctx, interval(n.o.PurgeAfter)); err != nil {
		errs = append(errs, fmt.Errorf("deleting dead nodes: %w", err))
	}
	return errors.Join(errs...)
}

// sweepRow deletes one dead node's row for a user and reports whether that was the user's
// last in the session.
func (n *Node) sweepRow(ctx context.Context, r db.PresenceDeadRowsRow) (left bool, err error) {
	err = postgres.InTx(ctx, n.pool, func(tx pgx.Tx) error {
		q := n.q.WithTx(tx)
		if err := q.PresenceUserLock(ctx, lockKey(r.SessionID, r.UserID)); err != nil {
			return err
		}
		deleted, err := q.PresenceDeadRowDelete(ctx, db.PresenceDeadRowDeleteParams{
			NodeID: r.NodeID, SessionID: r.SessionID, UserID: r.UserID, MaxAge: interval(n.o.PurgeAfter),
		})
		if err != nil || deleted == 0 {
			return err // deleted by another sweep, or the node came back
		}
		if !r.Stopped {
			n.purgedRows.Add(1)
		}
		c, err := q.PresenceUserCount(ctx, db.PresenceUserCountParams{SessionID: r.SessionID, UserID: r.UserID})
		if err != nil || c > 0 {
			return err
		}
		left = true
		if n.o.Recorder == nil {
			return nil
		}
		var at time.Time // the node row is gone: the last heartbeat is unknown, now it is
		if r.LastSeen != nil {
			at = *r.LastSeen
		}
		return n.o.Recorder.Departed(ctx, tx, r.SessionID, r.UserID, at)
	})
	if err != nil {
		return false, err
	}
	return left, nil
}

func lockKey(session uuid.UUID, userID string) string { return session.String() + "/" + userID }

// errCapped carries a cap's error out of Arrive's transaction (which it rolls back).
type errCapped struct{ err error }

func (e errCapped) Error() string { return e.err.Error() }

// Arrive records this node's connection count for u (presence.Directory). With caps, the
// session's lock is taken first (arrivals in one session are counted one at a time across
// nodes; departures only lower counts and do not take it), then the user's; the user's rows
// on dead nodes that no sweep has removed yet are removed (departDead), the count is written,
// the totals over live nodes read, and the write rolled back when over a cap.
func (n *Node) Arrive(ctx context.Context, session uuid.UUID, u presence.User, conns int, caps presence.Caps) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.OpTimeout)
	defer cancel()
	capped := caps.PerUser > 0 || caps.PerSession > 0
	var before int32
	departedDead := false
	// Back before a failed departure was retried: the retry must not delete the new row,
	// and the old one, whose leave went out, no longer counts.
	k := userKey{session, u.UserID}
	n.pmu.Lock()
	pendingAt, wasPending := n.pending[k]
	delete(n.pending, k)
	n.pmu.Unlock()
	at := time.Now()
	err := postgres.InTx(ctx, n.pool, func(tx pgx.Tx) error {
		q := n.q.WithTx(tx)
		if capped {
			if err := q.PresenceUserLock(ctx, session.String()); err != nil {
				return err
			}
		}
		if err := q.PresenceUserLock(ctx, lockKey(session, u.UserID)); err != nil {
			return err
		}
		var err error
		if departedDead, err = n.departDead(ctx, tx, session, u.UserID); err != nil {
			return err
		}
		if wasPending {
			_, err := q.PresenceConnectionDelete(ctx, db.PresenceConnectionDeleteParams{NodeID: n.id, SessionID: session, UserID: u.UserID})
			if err != nil {
				return err
			}
		}
		before, err = q.PresenceConnectionUpsert(ctx, db.PresenceConnectionUpsertParams{
			NodeID: n.id, SessionID: session, UserID: u.UserID, Name: u.Name, Role: u.Role, Conns: int32(conns),
		})
		if err != nil {
			return err
		}
		if !capped {
			return nil
		}
		t, err := q.PresenceConnectionTotals(ctx, db.PresenceConnectionTotalsParams{
			UserID: u.UserID, SessionID: session, NodeID: n.id, MaxAge: interval(n.o.PurgeAfter),
		})
		if err != nil {
			return err
		}
		switch {
		case caps.PerUser > 0 && int(t.UserConns) > caps.PerUser:
			return errCapped{presence.ErrTooManyConnections}
		case caps.PerSession > 0 && int(t.SessionConns) > caps.PerSession:
			return errCapped{presence.ErrSessionFull}
		}
		return nil
	})
	if err != nil && wasPending {
		n.pmu.Lock()
		if _, ok := n.pending[k]; !ok {
			n.pending[k] = pendingAt // the departure is still to be recorded
		}
		n.pmu.Unlock()
	}
	var ce errCapped
	if errors.As(err, &ce) {
		return false, ce.err
	}
	if err != nil {
		n.o.Log.Error("cluster: recording presence", "session", session, "user", u.UserID, "err", err)
		return true, nil
	}
	if departedDead {
		n.o.Log.Info("cluster: user left with a dead node", "session", session, "user", u.UserID)
		n.o.OnDeparted(session, u.UserID) // their leave goes out before this arrival's join
	}
	if before == 0 && n.o.Recorder != nil {
		n.o.Recorder.Changed(session, u, true, at) // committed: nothing rolls it back now
	}
	return before == 0, nil
}

// departDead deletes, in an arrival's transaction, the user's rows on nodes silent for
// PurgeAfter that no sweep has removed yet, and reports whether the user thereby left the
// session (the Recorder sees the departure at the dead node's last heartbeat). Without it an
// arrival soon after a restart would count those rows: no join, and the outage counted as
// attendance.
func (n *Node) departDead(ctx context.Context, tx pgx.Tx, session uuid.UUID, userID string) (left bool, err error) {
	q := n.q.WithTx(tx)
	seen, err := q.PresenceUserDeadRowsDelete(ctx, db.PresenceUserDeadRowsDeleteParams{
		SessionID: session, UserID: userID, NodeID: n.id, MaxAge: interval(n.o.PurgeAfter),
	})
	if err != nil || len(seen) == 0 {
		return false, err
	}
	for _, r := range seen {
		if !r.Stopped {
			n.purgedRows.Add(1)
		}
	}
	c, err := q.PresenceUserCount(ctx, db.PresenceUserCountParams{SessionID: session, UserID: userID})
	if err != nil || c > 0 {
		return false, err
	}
	if n.o.Recorder != nil {
		at := slices.MaxFunc(seen, func(a, b db.PresenceUserDeadRowsDeleteRow) int { return a.LastSeen.Compare(b.LastSeen) }).LastSeen
		err := n.recordIn(ctx, tx, session, userID, func(tx pgx.Tx) error { return n.o.Recorder.Departed(ctx, tx, session, userID, at) })
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// recordIn runs a Recorder call of an arrival in a savepoint of tx: its failure is logged
// and undoes the record only, so that a user Arrive admits always has their presence row
// (attendance misses that span). The error returned is the savepoint's own (the
// transaction is unusable).
func (n *Node) recordIn(ctx context.Context, tx pgx.Tx, session uuid.UUID, userID string, record func(pgx.Tx) error) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	if err := record(sp); err != nil {
		n.o.Log.Error("cluster: attendance not recorded", "session", session, "user", userID, "err", err)
		return sp.Rollback(ctx)
	}
	return sp.Commit(ctx)
}

// Depart records this node's remaining connection count for a user (presence.Directory).
// A last departure whose transaction fails is answered true (the leave goes out) and retried
// at each tick until it is recorded. After Stop it records nothing and answers false: the
// user is not seen to leave from here.
func (n *Node) Depart(ctx context.Context, session uuid.UUID, userID string, conns int) bool {
	if n.stopped.Load() {
		return false // the row stays for the others' sweep (Stop)
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.OpTimeout)
	defer cancel()
	if conns > 0 {
		err := n.q.PresenceConnectionCountSet(ctx, db.PresenceConnectionCountSetParams{
			NodeID: n.id, SessionID: session, UserID: userID, Conns: int32(conns),
		})
		if err != nil {
			n.o.Log.Error("cluster: recording presence", "session", session, "user", userID, "err", err)
		}
		return false
	}
	k, at := userKey{session, userID}, time.Now()
	others, err := n.depart(ctx, k, at, false)
	if err != nil {
		n.o.Log.Error("cluster: removing presence; retried at the next tick", "session", session, "user", userID, "err", err)
		n.pmu.Lock()
		if _, ok := n.pending[k]; !ok {
			n.pending[k] = at
		}
		n.pmu.Unlock()
		return true
	}
	if others == 0 && n.o.Recorder != nil {
		n.o.Recorder.Changed(session, presence.User{UserID: userID}, false, at)
	}
	return others == 0
}

// errNotPending: a retried departure whose user arrived again meanwhile.
var errNotPending = errors.New("cluster: departure no longer pending")

// depart deletes this node's row for a user and reports how many other nodes have one. A
// retry checks, under the user's lock, that the departure (at at) is still pending (an
// arrival since drops it), so it never deletes a new row.
func (n *Node) depart(ctx context.Context, k userKey, at time.Time, retry bool) (others int32, err error) {
	err = postgres.InTx(ctx, n.pool, func(tx pgx.Tx) error {
		q := n.q.WithTx(tx)
		if err := q.PresenceUserLock(ctx, lockKey(k.session, k.user)); err != nil {
			return err
		}
		if retry {
			n.pmu.Lock()
			p, ok := n.pending[k]
			n.pmu.Unlock()
			if !ok || !p.Equal(at) {
				return errNotPending
			}
		}
		var err error
		others, err = q.PresenceConnectionDelete(ctx, db.PresenceConnectionDeleteParams{NodeID: n.id, SessionID: k.session, UserID: k.user})
		return err
	})
	return others, err
}

// retryDeparts retries the pending departures, each at its time; the leave was published
// when it first failed.
func (n *Node) retryDeparts(ctx context.Context) error {
	n.pmu.Lock()
	pending := maps.Clone(n.pending)
	n.pmu.Unlock()
	var errs []error
	for k, at := range pending {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		others, err := n.depart(ctx, k, at, true)
		if err != nil && !errors.Is(err, errNotPending) {
			errs = append(errs, fmt.Errorf("session %s user %q: %w", k.session, k.user, err))
			continue
		}
		if err == nil && others == 0 && n.o.Recorder != nil {
			n.o.Recorder.Changed(k.session, presence.User{UserID: k.user}, false, at)
		}
		n.pmu.Lock()
		if p, ok := n.pending[k]; ok && p.Equal(at) {
			delete(n.pending, k)
		}
		n.pmu.Unlock()
	}
	return errors.Join(errs...)
}

// Present lists the users present in a session on live nodes (presence.Directory).
func (n *Node) Present(ctx context.Context, session uuid.UUID) ([]presence.User, error) {
	rows, err := n.q.PresenceSessionUsers(ctx, db.PresenceSessionUsersParams{SessionID: session, MaxAge: interval(n.o.PurgeAfter)})
	if err != nil {
		return nil, fmt.Errorf("listing presence: %w", err)
	}
	out := make([]presence.User, len(rows))
	for i, r := range rows {
		out[i] = presence.User{UserID: r.UserID, Name: r.Name, Role: r.Role}
	}
	return out, nil
}

var _ presence.Directory = (*Node)(nil)
