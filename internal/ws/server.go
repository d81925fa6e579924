// Package ws is the classroom presence and cursor WebSocket endpoint (the AsyncAPI document; the
// message contract is asyncapi/asyncapi.yaml). It authenticates and authorises the upgrade,
// turns presence's refusals (connection caps, ended sessions) into close codes, validates
// every inbound frame against the AsyncAPI schemas, and runs each connection as
// one reader and one writer around a bounded outbox in which cursor updates for a slow
// reader are coalesced (latest per sender) while presence events are kept. Who is present
// and the fan-out live in internal/presence.
package ws

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/classroom"
	"github.com/m4sh/backend/internal/presence"
)

// Subprotocol is the protocol the server selects.
const Subprotocol = "m4sh.presence.v1"

// bearerPrefix marks the subprotocol entry that carries the token in browsers.
const bearerPrefix = "bearer."

// Close codes and reasons of the contract.
const (
	CodeBadRequest   = 4400
	CodeUnauthorized = 4401
	CodeForbidden    = 4403
	// CodeTooMany closes a connection over WS_MAX_CONNS_PER_USER or WS_MAX_CONNS_PER_SESSION
	// (the client stops and tells the user).
	CodeTooMany      = 4409
	CodeRateLimited  = 4429
	CodeGoingAway    = int(websocket.StatusGoingAway)
	CodeInternal     = int(websocket.StatusInternalError)
	CodeSlowConsumer = int(websocket.StatusTryAgainLater)
	// codeAbnormal is recorded (never sent) when the peer vanished, timed out or a write failed.
	codeAbnormal = int(websocket.StatusAbnormalClosure)
)

// Close reasons.
const (
	ReasonBadRequest   = "bad_request"
	ReasonUnauthorized = "unauthorized"
	ReasonTokenExpired = "token_expired"
	ReasonForbidden    = "forbidden"
	ReasonSessionEnded = "session_ended"
	// ReasonTooManyConnections: the user has WS_MAX_CONNS_PER_USER connections to the session.
	ReasonTooManyConnections = "too_many_connections"
	// ReasonSessionFull: the session has WS_MAX_CONNS_PER_SESSION connections.
	ReasonSessionFull  = "session_full"
	ReasonRateLimited  = "rate_limited"
	ReasonGoingAway    = "going_away"
	ReasonInternal     = "internal_error"
	ReasonSlowConsumer = "slow_consumer"
)

// RoleChecker is the classroom role helper.
type RoleChecker interface {
	SessionRole(ctx context.Context, classroomID, sessionID uuid.UUID, userID string) (classroom.Role, error)
}

// UserRecorder records users on first sight.
type UserRecorder interface {
	Seen(ctx context.Context, userID, name string) error
}

// Options are the connection limits (config WS_*).
type Options struct {
	MaxPayloadBytes int
	AllowedOrigins  []string
	PingInterval    time.Duration
	PongTimeout     time.Duration
	WriteTimeout    time.Duration
	SendQueue       int // presence frames queued per connection before 1013
	// MaxWritePause bounds the pause a writer makes between writes while the process is
	// behind (see pacer); 0 turns pacing off.
	MaxWritePause time.Duration
}

// Deps are the endpoint's collaborators.
type Deps struct {
	Log        *slog.Logger
	Registerer prometheus.Registerer
	Verifier   *auth.Verifier
	Users      UserRecorder
	Roles      RoleChecker
	Hub        *presence.Hub
	Schemas    *Schemas
	Options    Options
}

// Server is the WebSocket endpoint; mount it at
// GET /ws/classroom/{class_id}/session/{session_id}/{$}.
type Server struct {
	log     *slog.Logger
	m       *wsMetrics
	verify  *auth.Verifier
	users   UserRecorder
	roles   RoleChecker
	hub     *presence.Hub
	schemas *Schemas
	opts    Options

	pacer     *pacer
	stopPacer context.CancelFunc

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
	wg      sync.WaitGroup
}

// New returns a Server. Its write pacer runs until Shutdown.
func New(d Deps) *Server {
	s := &Server{log: d.Log, m: newMetrics(d.Registerer), verify: d.Verifier, users: d.Users, roles: d.Roles,
		hub: d.Hub, schemas: d.Schemas, opts: d.Options, conns: map[*conn]struct{}{}, pacer: newPacer(d.Options.MaxWritePause)}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopPacer = cancel
	go s.pacer.run(ctx, func(d time.Duration) { s.m.writePause.Set(d.Seconds()) })
	return s
}

// tokenFrom returns the bearer token from the Authorization header or, for browsers, the
// `bearer.<jwt>` subprotocol entry. The query string is never read.
func tokenFrom(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, _ := auth.BearerToken(h)
		return tok
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); len(p) > len(bearerPrefix) && strings.EqualFold(p[:len(bearerPrefix)], bearerPrefix) {
				return p[len(bearerPrefix):]
			}
		}
	}
	return ""
}

// refusal is a reason to close a connection right after the upgrade.
type refusal struct {
	code    int
	reason  string
	outcome string
}

// ServeHTTP upgrades, then admits or refuses the connection with a close code.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := tokenFrom(r)
	sb := &smallBuffers{ResponseWriter: w, writeTimeout: s.opts.WriteTimeout}
	var cn *conn
	c, err := websocket.Accept(sb, r, &websocket.AcceptOptions{
		Subprotocols:    []string{Subprotocol},
		OriginPatterns:  s.opts.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled,
		// coder/websocket sees a pong only inside a fragmented message (see waitFrame); cn is
		// set before anything is read.
		OnPongReceived: func(context.Context, []byte) { cn.ponged() },
	})
	if err != nil {
		s.m.connects.WithLabelValues("handshake_refused").Inc()
		s.log.DebugContext(r.Context(), "websocket upgrade refused", "err", err)
		return
	}
	c.SetReadLimit(-1) // readMessage enforces MaxPayloadBytes with the contract's 4400
	p, role, classID, sessionID, ref := s.admit(r.Context(), r, tok)
	if ref != nil {
		s.m.connects.WithLabelValues(ref.outcome).Inc()
		s.m.closed(ref.code)
		_ = c.Close(websocket.StatusCode(ref.code), ref.reason)
		return
	}
	cn = newConn(s, c, sb, presence.User{UserID: p.UserID, Name: p.Name, Role: string(role)}, sessionID)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.m.connects.WithLabelValues("shutting_down").Inc()
		s.m.closed(CodeGoingAway)
		_ = c.Close(websocket.StatusGoingAway, ReasonGoingAway)
		return
	}
	s.conns[cn] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.m.open.Inc()
	if err := cn.join(r.Context(), classID, p.Expires); err != nil {
		// Refused by presence: closed like any live connection, which is what it is by now.
		ref := joinRefusal(err)
		s.m.connects.WithLabelValues(ref.outcome).Inc()
		cn.CloseWith(ref.code, ref.reason)
	} else {
		s.m.connects.WithLabelValues("accepted").Inc()
	}
	// The connection then lives on a fresh goroutine and the handler returns: the handler's
	// stack has grown through net/http, the middleware chain and the join, and an idle
	// connection would keep that stack for its whole life. A fresh goroutine that only reads
	// stays small (memory per idle connection, issue 4). net/http does nothing more with a
	// hijacked connection.
	go func() {
		defer func() {
			s.m.open.Dec()
			s.mu.Lock()
			delete(s.conns, cn)
			s.mu.Unlock()
			s.wg.Done()
		}()
		cn.serve()
	}()
}

// admit authenticates and authorises an upgraded request.
func (s *Server) admit(ctx context.Context, r *http.Request, tok string) (auth.Principal, classroom.Role, uuid.UUID, uuid.UUID, *refusal) {
	var none uuid.UUID
	if tok == "" {
		return auth.Principal{}, "", none, none, &refusal{CodeUnauthorized, ReasonUnauthorized, "unauthorized"}
	}
	p, err := s.verify.Verify(tok)
	if err != nil {
		s.log.DebugContext(ctx, "websocket token refused", "err", err)
		return auth.Principal{}, "", none, none, &refusal{CodeUnauthorized, ReasonUnauthorized, "unauthorized"}
	}
	classID, err1 := uuid.Parse(r.PathValue("class_id"))
	sessionID, err2 := uuid.Parse(r.PathValue("session_id"))
	if err1 != nil || err2 != nil {
		return p, "", none, none, &refusal{CodeForbidden, ReasonForbidden, "forbidden"}
	}
	if err := s.users.Seen(ctx, p.UserID, p.Name); err != nil {
		s.log.ErrorContext(ctx, "websocket: recording user", "err", err)
		return p, "", none, none, &refusal{CodeInternal, ReasonInternal, "error"}
	}
	role, err := s.roles.SessionRole(ctx, classID, sessionID, p.UserID)
	if err != nil {
		if errors.Is(err, classroom.ErrSessionEnded) {
			return p, "", none, none, &refusal{CodeForbidden, ReasonSessionEnded, "session_ended"}
		}
		if apperr.Is(err, apperr.Forbidden) {
			return p, "", none, none, &refusal{CodeForbidden, ReasonForbidden, "forbidden"}
		}
		s.log.ErrorContext(ctx, "websocket: checking role", "err", err)
		return p, "", none, none, &refusal{CodeInternal, ReasonInternal, "error"}
	}
	return p, role, classID, sessionID, nil
}

// Shutdown closes every connection with 1001 going_away and waits until they are gone or
// ctx ends. New upgrades are refused with the same code from then on. http.Server.Shutdown
// does not see hijacked connections, so serve calls this beside it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopPacer()
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.CloseWith(CodeGoingAway, ReasonGoingAway)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("websocket connections still open at the shutdown deadline")
	}
}

// joinRefusal is the close for a join presence refused.
func joinRefusal(err error) *refusal {
	var ended *presence.EndedError
	switch {
	case errors.Is(err, presence.ErrTooManyConnections):
		return &refusal{CodeTooMany, ReasonTooManyConnections, "too_many_connections"}
	case errors.Is(err, presence.ErrSessionFull):
		return &refusal{CodeTooMany, ReasonSessionFull, "session_full"}
	case errors.As(err, &ended):
		return &refusal{ended.Code, ended.Reason, "session_ended"}
	}
	return &refusal{CodeInternal, ReasonInternal, "error"}
}

// CloseMember closes a removed member's connections to the classroom's sessions with 4403,
// on every node.
func (s *Server) CloseMember(classroomID uuid.UUID, userID string) {
	s.hub.Close(presence.Close{ClassroomID: classroomID, UserID: userID, Code: CodeForbidden, Reason: ReasonForbidden})
}

// CloseSession closes every connection to an ended session with 4403 session_ended, on
// every node, and refuses new ones; the classroom service calls it when a session ends.
func (s *Server) CloseSession(classroomID, sessionID uuid.UUID) {
	s.hub.Close(presence.Close{ClassroomID: classroomID, SessionID: sessionID, Code: CodeForbidden, Reason: ReasonSessionEnded})
}
