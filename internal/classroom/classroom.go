// Package classroom is the classrooms feature: classrooms with a tutor, their members and
// their sessions, and the role helper the WebSocket layer calls on every connect. The caller
// who creates a classroom is its tutor; tutor and members may read, only the tutor may
// change, and anyone else is told the classroom does not exist.
package classroom

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/page"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/webhook"
)

// Role is a user's role in a classroom.
type Role string

// Roles. A user who is neither has no role, and sees nothing of the classroom.
const (
	RoleTutor   Role = "tutor"
	RoleStudent Role = "student"
)

// Classroom is a classroom as the API shows it.
type Classroom struct {
	ID        uuid.UUID
	Title     string
	TutorID   string
	CreatedAt time.Time
}

// Member is one entry of a roster.
type Member struct {
	UserID   string
	Name     string
	Role     Role
	JoinedAt time.Time
}

// Session is a classroom session.
type Session struct {
	ID          uuid.UUID
	ClassroomID uuid.UUID
	Title       string
	Status      string
	StartedAt   time.Time
	EndedAt     *time.Time
}

// Options configure a Service.
type Options struct {
	// MaxMembers caps a classroom's roster (so it can be listed without pagination).
	MaxMembers int
	// Events queues session.started and session.ended in the transaction that starts or
	// ends the session; nil sends none.
	Events *webhook.Publisher
}

// Service implements the classroom operations.
type Service struct {
	pool            *pgxpool.Pool
	q               *db.Queries
	opts            Options
	onMemberRemoved func(ctx context.Context, classroomID uuid.UUID, userID string)
	sessionEnded    func(classroomID, sessionID uuid.UUID) // see SetOnSessionEnded
}

// SetOnMemberRemoved sets what runs after a removal commits: presence closes the user's live
// connections in the classroom. The WebSocket server that does it is built after the
// Service (it asks the Service for roles), so the hook is set during wiring, before serving.
func (s *Service) SetOnMemberRemoved(fn func(ctx context.Context, classroomID uuid.UUID, userID string)) {
	s.onMemberRemoved = fn
}

// ErrSessionEnded is wrapped (as Forbidden) by SessionRole for a session that has ended.
var ErrSessionEnded = errors.New("the session has ended")

// SetOnSessionEnded sets what runs after a session's end commits: the WebSocket server
// closes the session's live connections on every node. Like SetOnMemberRemoved it is set
// during wiring, before serving.
func (s *Service) SetOnSessionEnded(fn func(classroomID, sessionID uuid.UUID)) { s.sessionEnded = fn }

// New returns a Service over pool.
func New(pool *pgxpool.Pool, opts Options) *Service {
	if opts.MaxMembers <= 0 {
		opts.MaxMembers = 500
	}
	return &Service{pool: pool, q: db.New(pool), opts: opts}
}

func errNotFound(err error) error {
	return apperr.Wrap(apperr.NotFound, err, "classroom not found")
}

// Create makes a classroom with the caller as tutor.
func (s *Service) Create(ctx context.Context, userID, title string) (Classroom, error) {
	c, err := s.q.ClassroomCreate(ctx, db.ClassroomCreateParams{Title: strings.TrimSpace(title), TutorID: userID})
	if err != nil {
		return Classroom{}, postgres.Interpret(err, "classroom")
	}
	return fromRow(c), nil
}

func fromRow(c db.Classroom) Classroom {
	return Classroom{ID: c.ID, Title: c.Title, TutorID: c.TutorID, CreatedAt: c.CreatedAt}
}

// Get returns a classroom the caller may see and the caller's role in it.
func (s *Service) Get(ctx context.Context, userID string, id uuid.UUID) (Classroom, Role, error) {
	return get(ctx, s.q, userID, id)
}

func get(ctx context.Context, q *db.Queries, userID string, id uuid.UUID) (Classroom, Role, error) {
	r, err := q.ClassroomGetForUser(ctx, db.ClassroomGetForUserParams{ID: id, UserID: userID})
	if err != nil {
		if apperr.Is(postgres.Interpret(err, "classroom"), apperr.NotFound) {
			return Classroom{}, "", errNotFound(err)
		}
		return Classroom{}, "", postgres.Interpret(err, "classroom")
	}
	return Classroom{ID: r.ID, Title: r.Title, TutorID: r.TutorID, CreatedAt: r.CreatedAt}, Role(r.Role), nil
}

// asTutor returns the classroom when the caller is its tutor: 404 for strangers, 403 for
// members (who may see it but not change it).
func asTutor(ctx context.Context, q *db.Queries, userID string, id uuid.UUID) (Classroom, error) {
	c, role, err := get(ctx, q, userID, id)
	if err != nil {
		return Classroom{}, err
	}
	if role != RoleTutor {
		return Classroom{}, apperr.New(apperr.Forbidden, "only the classroom's tutor may do this")
	}
	return c, nil
}

// List returns one page of the classrooms where the caller is tutor or member.
func (s *Service) List(ctx context.Context, userID string, p page.Request) ([]Classroom, *string, error) {
	t, id := p.Bounds()
	rows, err := s.q.ClassroomListForUser(ctx, db.ClassroomListForUserParams{UserID: userID, BeforeTime: t, BeforeID: id, Lim: p.FetchLimit()})
	if err != nil {
		return nil, nil, postgres.Interpret(err, "classrooms")
	}
	rows, next := page.Next(p, rows, func(c db.Classroom) page.Cursor { return page.Cursor{Time: c.CreatedAt, ID: c.ID} })
	out := make([]Classroom, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, next, nil
}

// Members returns the roster: the tutor first, then members by join time.
func (s *Service) Members(ctx context.Context, userID string, id uuid.UUID) ([]Member, error) {
	c, _, err := s.Get(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	tutor, err := s.q.UserGetByID(ctx, c.TutorID)
	if err != nil {
		return nil, postgres.Interpret(err, "tutor")
	}
	rows, err := s.q.ClassroomMemberList(ctx, id)
	if err != nil {
		return nil, postgres.Interpret(err, "members")
	}
	out := make([]Member, 0, len(rows)+1)
	out = append(out, Member{UserID: tutor.ID, Name: tutor.Name, Role: RoleTutor, JoinedAt: c.CreatedAt})
	for _, r := range rows {
		out = append(out, Member{UserID: r.UserID, Name: r.Name, Role: RoleStudent, JoinedAt: r.JoinedAt})
	}
	return out, nil
}

// AddMember adds memberID to the classroom (tutor only). It is idempotent: created reports
// whether the membership is new.
func (s *Service) AddMember(ctx context.Context, userID string, id uuid.UUID, memberID string) (m Member, created bool, err error) {
	err = postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		c, err := asTutor(ctx, q, userID, id)
		if err != nil {
			return err
		}
		if memberID == c.TutorID {
			return apperr.New(apperr.Conflict, "the tutor cannot also be a member")
		}
		if _, err := q.ClassroomLockForUpdate(ctx, id); err != nil {
			return postgres.Interpret(err, "classroom")
		}
		existing, err := q.ClassroomMemberGet(ctx, db.ClassroomMemberGetParams{ClassroomID: id, UserID: memberID})
		if err == nil {
			m = Member{UserID: existing.UserID, Name: existing.Name, Role: RoleStudent, JoinedAt: existing.JoinedAt}
			return nil
		}
		if !apperr.Is(postgres.Interpret(err, "member"), apperr.NotFound) {
			return postgres.Interpret(err, "member")
		}
		n, err := q.ClassroomMemberCount(ctx, id)
		if err != nil {
			return postgres.Interpret(err, "members")
		}
		if n >= int64(s.opts.MaxMembers) {
			return apperr.New(apperr.Conflict, "the classroom is full (%d members)", s.opts.MaxMembers)
		}
		if err := q.UserEnsure(ctx, memberID); err != nil {
			return postgres.Interpret(err, "user")
		}
		if _, err := q.ClassroomMemberAdd(ctx, db.ClassroomMemberAddParams{ClassroomID: id, UserID: memberID}); err != nil {
			return postgres.Interpret(err, "member")
		}
		row, err := q.ClassroomMemberGet(ctx, db.ClassroomMemberGetParams{ClassroomID: id, UserID: memberID})
		if err != nil {
			return postgres.Interpret(err, "member")
		}
		m = Member{UserID: row.UserID, Name: row.Name, Role: RoleStudent, JoinedAt: row.JoinedAt}
		created = true
		return nil
	})
	return m, created, err
}

// RemoveMember removes memberID (tutor only) and then lets presence close their connections.
func (s *Service) RemoveMember(ctx context.Context, userID string, id uuid.UUID, memberID string) error {
	if _, err := asTutor(ctx, s.q, userID, id); err != nil {
		return err
	}
	n, err := s.q.ClassroomMemberRemove(ctx, db.ClassroomMemberRemoveParams{ClassroomID: id, UserID: memberID})
	if err != nil {
		return postgres.Interpret(err, "member")
	}
	if n == 0 {
		return apperr.New(apperr.NotFound, "member not found")
	}
	if s.onMemberRemoved != nil {
		s.onMemberRemoved(ctx, id, memberID)
	}
	return nil
}

func sessionFromRow(r db.ClassroomSession) Session {
	return Session{ID: r.ID, ClassroomID: r.ClassroomID, Title: r.Title, Status: r.Status, StartedAt: r.StartedAt, EndedAt: r.EndedAt}
}

// CreateSession starts a session in the classroom (tutor only), and queues session.started
// in the same transaction.
func (s *Service) CreateSession(ctx context.Context, userID string, id uuid.UUID, title string) (Session, error) {
	c, err := asTutor(ctx, s.q, userID, id)
	if err != nil {
		return Session{}, err
	}
	var r db.ClassroomSession
	err = postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if r, err = s.q.WithTx(tx).ClassroomSessionCreate(ctx, db.ClassroomSessionCreateParams{ClassroomID: id, TutorID: c.TutorID, Title: strings.TrimSpace(title)}); err != nil {
			return postgres.Interpret(err, "session")
		}
		return s.opts.Events.Publish(ctx, tx, webhook.Event{Type: webhook.SessionStarted, Data: sessionEvent(r), At: r.StartedAt})
	})
	if err != nil {
		return Session{}, err
	}
	return sessionFromRow(r), nil
}

func sessionEvent(r db.ClassroomSession) webhook.SessionData {
	return webhook.SessionData{ClassroomID: r.ClassroomID, SessionID: r.ID, Title: r.Title, TutorID: r.TutorID, StartedAt: r.StartedAt, EndedAt: r.EndedAt}
}

// GetSession returns a session of a classroom the caller may see.
func (s *Service) GetSession(ctx context.Context, userID string, id, sessionID uuid.UUID) (Session, error) {
	if _, _, err := s.Get(ctx, userID, id); err != nil {
		return Session{}, err
	}
	r, err := s.q.ClassroomSessionGet(ctx, db.ClassroomSessionGetParams{ID: sessionID, ClassroomID: id})
	if err != nil {
		return Session{}, postgres.Interpret(err, "session")
	}
	return sessionFromRow(r), nil
}

// ListSessions returns one page of a classroom's sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, userID string, id uuid.UUID, p page.Request) ([]Session, *string, error) {
	if _, _, err := s.Get(ctx, userID, id); err != nil {
		return nil, nil, err
	}
	t, before := p.Bounds()
	rows, err := s.q.ClassroomSessionList(ctx, db.ClassroomSessionListParams{ClassroomID: id, BeforeTime: t, BeforeID: before, Lim: p.FetchLimit()})
	if err != nil {
		return nil, nil, postgres.Interpret(err, "sessions")
	}
	rows, next := page.Next(p, rows, func(r db.ClassroomSession) page.Cursor { return page.Cursor{Time: r.StartedAt, ID: r.ID} })
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = sessionFromRow(r)
	}
	return out, next, nil
}

// EndSession ends a session (tutor only); ending an ended session changes nothing. The
// transition to ended queues session.ended in the same transaction, and only the
// transition: the row is locked first, so of two concurrent ends one sends the event.
func (s *Service) EndSession(ctx context.Context, userID string, id, sessionID uuid.UUID) (Session, error) {
	if _, err := asTutor(ctx, s.q, userID, id); err != nil {
		return Session{}, err
	}
	var r db.ClassroomSession
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		before, err := q.ClassroomSessionGetForUpdate(ctx, db.ClassroomSessionGetForUpdateParams{ID: sessionID, ClassroomID: id})
		if err != nil {
			return postgres.Interpret(err, "session")
		}
		if r, err = q.ClassroomSessionEnd(ctx, db.ClassroomSessionEndParams{ID: sessionID, ClassroomID: id}); err != nil {
			return postgres.Interpret(err, "session")
		}
		if before.Status == r.Status {
			return nil
		}
		return s.opts.Events.Publish(ctx, tx, webhook.Event{Type: webhook.SessionEnded, Data: sessionEvent(r), At: *r.EndedAt})
	})
	if err != nil {
		return Session{}, err
	}
	// Also when it had ended already: closing is idempotent, and it retries a close that
	// did not reach every node.
	if s.sessionEnded != nil && r.Status == "ended" {
		s.sessionEnded(id, sessionID)
	}
	return sessionFromRow(r), nil
}

// SessionRole is the WebSocket handshake's check, one query: the caller's role in the
// classroom, provided the session exists in it. Any failure is Forbidden (close 4403).
func (s *Service) SessionRole(ctx context.Context, classroomID, sessionID uuid.UUID, userID string) (Role, error) {
	r, err := s.q.ClassroomSessionRole(ctx, db.ClassroomSessionRoleParams{ClassroomID: classroomID, SessionID: sessionID, UserID: userID})
	if err != nil {
		if e := postgres.Interpret(err, "classroom"); !apperr.Is(e, apperr.NotFound) {
			return "", e
		}
		return "", apperr.Wrap(apperr.Forbidden, err, "not a member of this classroom")
	}
	if !r.SessionFound {
		return "", apperr.New(apperr.Forbidden, "no such session in this classroom")
	}
	if r.SessionStatus != "active" {
		return "", apperr.Wrap(apperr.Forbidden, ErrSessionEnded, "the session has ended")
	}
	return Role(r.Role), nil
}
