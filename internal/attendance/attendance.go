// Package attendance keeps the classroom's record of who attended a session and for how
// long: spans from a user's first connection to their leave, merged across tabs, nodes and
// presence's leave grace, one row write per join and per leave (never per cursor). Spans are
// written from presence transitions: by the cluster's Recorder hook inside the transaction
// that records them (several nodes), or by the presence hub's transition hook (a node
// alone). Each span's start and end queue participant.joined and participant.left in the
// same transaction, so an event exists exactly when its span does.
package attendance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
}

// Recorder writes attendance spans and queues their events.
type Recorder struct {
	pool   *pgxpool.Pool
	q      *db.Queries
	log    *slog.Logger
	events Events
}

// New returns a Recorder over pool; events may be nil (webhooks off).
func New(pool *pgxpool.Pool, log *slog.Logger, events Events) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if events == nil {
		events = (*webhook.Publisher)(nil)
	}
	return &Recorder{pool: pool, q: db.New(pool), log: log, events: events}
}

// Arrived opens u's span in the session, unless one is open (another node's tab, a race
// already settled) or the session is not a classroom session, and queues participant.joined.
func (r *Recorder) Arrived(ctx context.Context, tx pgx.Tx, session uuid.UUID, u presence.User) error {
	row, err := r.q.WithTx(tx).AttendanceSpanOpen(ctx, db.AttendanceSpanOpenParams{SessionID: session, UserID: u.UserID, Name: u.Name, Role: u.Role})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening attendance span: %w", err)
	}
	return r.events.Publish(ctx, tx, webhook.Event{Type: webhook.ParticipantJoined, At: row.JoinedAt, Data: webhook.ParticipantData{
		ClassroomID: row.ClassroomID, SessionID: session, UserID: u.UserID, Role: u.Role, JoinedAt: row.JoinedAt,
	}})
}

// Departed closes the user's open span at at (now when zero), and queues participant.left;
// with no open span it does nothing.
func (r *Recorder) Departed(ctx context.Context, tx pgx.Tx, session uuid.UUID, userID string, at time.Time) error {
	var leftAt *time.Time
	if !at.IsZero() {
		leftAt = &at
	}
	row, err := r.q.WithTx(tx).AttendanceSpanClose(ctx, db.AttendanceSpanCloseParams{SessionID: session, UserID: userID, LeftAt: leftAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("closing attendance span: %w", err)
	}
	return r.events.Publish(ctx, tx, webhook.Event{Type: webhook.ParticipantLeft, At: row.LeftAt, Data: webhook.ParticipantData{
		ClassroomID: row.ClassroomID, SessionID: session, UserID: userID, Role: row.Role, JoinedAt: row.JoinedAt, LeftAt: &row.LeftAt,
	}})
}

var _ cluster.Recorder = (*Recorder)(nil)

// Transition records a presence transition of a hub alone (presence.Options.OnTransition),
// in a transaction of its own. Failures are logged: presence goes on without the record.
func (r *Recorder) Transition(ctx context.Context, session uuid.UUID, u presence.User, joined bool) {
	err := postgres.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		if joined {
			return r.Arrived(ctx, tx, session, u)
		}
		return r.Departed(ctx, tx, session, u.UserID, time.Time{})
	})
	if err != nil {
		r.log.ErrorContext(ctx, "attendance: recording presence", "session", session, "user", u.UserID, "joined", joined, "err", err)
	}
}

// CloseAll ends every open span now, with its participant.left: a node alone shutting
// down (its users' presence ends with it). Never call it with other nodes running.
func (r *Recorder) CloseAll(ctx context.Context) error {
	return postgres.InTx(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := r.q.WithTx(tx).AttendanceSpanCloseAll(ctx)
		if err != nil {
			return fmt.Errorf("closing attendance spans: %w", err)
		}
		for _, row := range rows {
			err := r.events.Publish(ctx, tx, webhook.Event{Type: webhook.ParticipantLeft, At: row.LeftAt, Data: webhook.ParticipantData{
				ClassroomID: row.ClassroomID, SessionID: row.SessionID, UserID: row.UserID, Role: row.Role, JoinedAt: row.JoinedAt, LeftAt: &row.LeftAt,
			}})
			if err != nil {
				return err
			}
		}
		return nil
	})
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
