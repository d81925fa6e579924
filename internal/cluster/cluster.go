// Package cluster is this process's membership in a cluster of identical nodes sharing one
// PostgreSQL: a random node id, a heartbeat row refreshed every HeartbeatInterval, and the
// presence rows (presence.Directory) that let every node answer who is in a session. Rows
// of a node silent for longer than PurgeAfter are deleted by any live node, which reports
// each user who thereby left the session entirely (OnDeparted publishes the leave).
package cluster

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
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/presence"
)

// Options configure a Node.
type Options struct {
	Log               *slog.Logger
	HeartbeatInterval time.Duration // default 10s
	PurgeAfter        time.Duration // default 30s
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

	purgedRows, selfPurged atomic.Int64 // metrics.go
}

// New returns a Node with a fresh id; Start begins its heartbeat.
func New(pool *pgxpool.Pool, o Options) *Node {
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 10 * time.Second
	}
	if o.PurgeAfter <= 0 {
		o.PurgeAfter = 30 * time.Second
	}
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
	return &Node{id: uuid.New(), pool: pool, q: db.New(pool), o: o, stop: make(chan struct{}), done: make(chan struct{})}
}

// SetHooks sets Options.OnDeparted and OnPurged when they could not be given to New: the
// presence hub that handles them is built with the Node as its directory. Call it before Start.
func (n *Node) SetHooks(departed func(session uuid.UUID, userID string), purged func(ctx context.Context)) {
	n.o.OnDeparted, n.o.OnPurged = departed, purged
}

// ID is this node's id.
func (n *Node) ID() uuid.UUID { return n.id }

// Start records the first heartbeat, then keeps beating and sweeping until Stop. A
// sweep runs twice per heartbeat interval so that a dead node's users leave at most
// PurgeAfter + HeartbeatInterval/2 after its last heartbeat. A failed first heartbeat (the
// schema not migrated yet: /readyz says so) is logged and retried by the loop.
func (n *Node) Start(ctx context.Context) {
	var lastBeat time.Time
	if _, err := n.q.PresenceNodeHeartbeat(ctx, n.id); err != nil {
		n.o.Log.WarnContext(ctx, "cluster: first heartbeat", "err", err)
	} else {
		lastBeat = time.Now()
	}
	n.started.Store(true)
	go n.loop(lastBeat)
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
			if inserted, err := n.q.PresenceNodeHeartbeat(ctx, n.id); err != nil {
				n.o.Log.Warn("cluster: heartbeat", "err", err)
			} else {
				if inserted && !lastBeat.IsZero() {
					n.o.Log.Warn("cluster: this node was purged by the others; recording its connections again")
					n.selfPurged.Add(1)
					n.o.OnPurged(ctx)
				}
				lastBeat = time.Now()
			}
		}
		if err := n.Sweep(ctx); err != nil {
			n.o.Log.Warn("cluster: purging dead nodes", "err", err)
		}
		cancel()
	}
}

// Stop ends the heartbeat and removes this node's rows (its connections have closed by
// then; whatever remains is dropped).
func (n *Node) Stop(ctx context.Context) {
	n.once.Do(func() {
		close(n.stop)
		if n.started.Load() {
			select {
			case <-n.done:
			case <-ctx.Done():
			}
		}
		if err := n.q.PresenceNodeConnectionsDelete(ctx, n.id); err != nil {
			n.o.Log.Warn("cluster: deleting this node's presence", "err", err)
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

// Sweep deletes the presence rows of nodes silent for PurgeAfter and calls OnDeparted for
// each user left with no row in a session. Concurrent sweeps on several nodes delete each
// row once, so each leave is reported by one node.
func (n *Node) Sweep(ctx context.Context) error {
	rows, err := n.q.PresenceConnectionPurge(ctx, interval(n.o.PurgeAfter))
	if err != nil {
		return err
	}
	n.purgedRows.Add(int64(len(rows)))
	if err := n.q.PresenceNodePurge(ctx, interval(n.o.PurgeAfter)); err != nil {
		return err
	}
	for _, r := range rows {
		var left bool
		err := postgres.InTx(ctx, n.pool, func(tx pgx.Tx) error {
			q := n.q.WithTx(tx)
			if err := q.PresenceUserLock(ctx, lockKey(r.SessionID, r.UserID)); err != nil {
				return err
			}
			c, err := q.PresenceUserCount(ctx, db.PresenceUserCountParams(r))
			left = c == 0
			return err
		})
		if err != nil {
			return err
		}
		if left {
			n.o.Log.Info("cluster: user left with a dead node", "session", r.SessionID, "user", r.UserID)
			n.o.OnDeparted(r.SessionID, r.UserID)
		}
	}
	return nil
}

func lockKey(session uuid.UUID, userID string) string { return session.String() + "/" + userID }

// errCapped carries a cap's error out of Arrive's transaction (which it rolls back).
type errCapped struct{ err error }

func (e errCapped) Error() string { return e.err.Error() }

// Arrive records this node's connection count for u (presence.Directory). With caps, the
// session's lock is taken first (arrivals in one session are counted one at a time across
// nodes; departures only lower counts and do not take it), then the user's; the count is
// written, the totals over live nodes read, and the write rolled back when over a cap.
func (n *Node) Arrive(ctx context.Context, session uuid.UUID, u presence.User, conns int, caps presence.Caps) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.OpTimeout)
	defer cancel()
	capped := caps.PerUser > 0 || caps.PerSession > 0
	var before int32
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
		before, err = q.PresenceConnectionUpsert(ctx, db.PresenceConnectionUpsertParams{
			NodeID: n.id, SessionID: session, UserID: u.UserID, Name: u.Name, Role: u.Role, Conns: int32(conns),
		})
		if err != nil || !capped {
			return err
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
	var ce errCapped
	if errors.As(err, &ce) {
		return false, ce.err
	}
	if err != nil {
		n.o.Log.Error("cluster: recording presence", "session", session, "user", u.UserID, "err", err)
		return true, nil
	}
	return before == 0, nil
}

// Depart records this node's remaining connection count for a user (presence.Directory).
func (n *Node) Depart(ctx context.Context, session uuid.UUID, userID string, conns int) bool {
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
	var others int32
	err := postgres.InTx(ctx, n.pool, func(tx pgx.Tx) error {
		q := n.q.WithTx(tx)
		if err := q.PresenceUserLock(ctx, lockKey(session, userID)); err != nil {
			return err
		}
		var err error
		others, err = q.PresenceConnectionDelete(ctx, db.PresenceConnectionDeleteParams{NodeID: n.id, SessionID: session, UserID: userID})
		return err
	})
	if err != nil {
		n.o.Log.Error("cluster: removing presence", "session", session, "user", userID, "err", err)
		return true
	}
	return others == 0
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
