// Package httpapi is the HTTP transport: it implements the strict server interface generated
// from openapi/openapi.yaml, validates every request against that document before any
// handler runs, and maps errors to problem+json in one place. Handlers stay thin: decode,
// call a feature service, encode.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/classroom"
	"github.com/m4sh/backend/internal/httpx"
	"github.com/m4sh/backend/internal/metrics"
	"github.com/m4sh/backend/internal/page"
	"github.com/m4sh/backend/internal/telemetry/ingest"
)

// Readiness reports whether the service can take traffic; each named check returns nil when
// healthy.
type Readiness interface {
	Ready(ctx context.Context) map[string]error
}

// Checks is a Readiness made of named check functions.
type Checks map[string]func(ctx context.Context) error

// Ready runs every check, one after the other, under ctx's deadline.
func (c Checks) Ready(ctx context.Context) map[string]error {
	out := make(map[string]error, len(c))
	for name, check := range c {
		out[name] = check(ctx)
	}
	return out
}

// UserRecorder records users on first sight.
type UserRecorder interface {
	Seen(ctx context.Context, userID, name string) error
}

// Deps are the HTTP layer's collaborators, wired by cmd/m4sh.
type Deps struct {
	Log      *slog.Logger
	Metrics  *metrics.Registry
	Verifier *auth.Verifier
	Users    UserRecorder
	// Ready is the readiness checks; /readyz answers from their result, cached for at most
	// a second and computed by one round at a time.
	Ready Readiness
	// BodyTimeout bounds how long a request body may take to arrive (HTTP_BODY_TIMEOUT).
	BodyTimeout time.Duration
	// WriteRatePerMin is the per-user creation throttle (API_WRITE_RATE_PER_MIN).
	WriteRatePerMin int
	// Doc is the OpenAPI document (api.GetSpec), parsed once by the caller.
	Doc *openapi3.T
	// Features.
	Classrooms *classroom.Service
	Solo       SoloService
	Presence   PresenceLister
	Attendance AttendanceLister
	// DevTokens mints dev sign-in tokens (DEV_TOKENS=1); nil leaves the dev routes out.
	DevTokens DevTokens
	// Telemetry is the public ingest's storage, throttle and limits (telemetry.go).
	Telemetry ingest.Options
	// Extra routes mounted beside the API (ops endpoints, docs, WebSocket), by ServeMux
	// pattern. They skip OpenAPI validation: they are not part of that document.
	Extra map[string]http.Handler
}

// Defaults of Deps, the documented defaults of their settings.
const (
	defaultBodyTimeout     = 30 * time.Second
	defaultWriteRatePerMin = 120
	// maxThrottledUsers bounds the write throttle's memory (about 100 bytes a user).
	maxThrottledUsers = 100_000
)

// Server implements api.StrictServerInterface.
type Server struct {
	log      *slog.Logger
	metrics  *metrics.Registry
	verifier *auth.Verifier
	users    UserRecorder
	ready    Readiness

	bodyTimeout time.Duration

	classrooms *classroom.Service
	solo       SoloService
	presence   PresenceLister
	attendance AttendanceLister
	devTokens  DevTokens
}

var _ api.StrictServerInterface = (*Server)(nil)

// NewHandler builds the service's whole HTTP handler: observe → (extra routes | authenticate
// → validate → generated routes → strict handlers).
func NewHandler(d Deps) (http.Handler, error) {
	if d.BodyTimeout <= 0 {
		d.BodyTimeout = defaultBodyTimeout
	}
	if d.WriteRatePerMin <= 0 {
		d.WriteRatePerMin = defaultWriteRatePerMin
	}
	s := &Server{log: d.Log, metrics: d.Metrics, verifier: d.Verifier, users: d.Users,
		ready: newCachedReadiness(d.Ready, readinessMaxAge, d.Log), bodyTimeout: d.BodyTimeout,
		classrooms: d.Classrooms, solo: d.Solo, presence: d.Presence, attendance: d.Attendance,
		devTokens: d.DevTokens}
	doc := d.Doc
	if doc == nil {
		return nil, errors.New("httpapi: Deps.Doc is required")
	}
	routed := doc
	if d.DevTokens == nil {
		routed = withoutDevRoutes(doc)
	}
	v, err := newValidator(routed, d.Log, newWriteThrottle(d.WriteRatePerMin, maxThrottledUsers, nil))
	if err != nil {
		return nil, err
	}
	strict := api.NewStrictHandlerWithOptions(s, []api.StrictMiddlewareFunc{withContentLength, withAccept}, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, s.log, httpx.DecodeError(err))
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			if responseStarted(w) {
				// Sending the body failed (the client left, or a write deadline passed): the
				// status line is out, so there is nothing to answer, and nothing the
				// service did wrong to report as an error.
				s.log.DebugContext(r.Context(), "response body not sent to its end", "err", err)
				return
			}
			writeError(w, r, s.log, err)
		},
	})
	apiMux := http.NewServeMux()
	api.HandlerWithOptions(strict, api.StdHTTPServerOptions{
		BaseRouter: apiMux,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, s.log, apperr.Wrap(apperr.Invalid, err, "invalid request parameter"))
		},
	})
	root := http.NewServeMux()
	for pattern, h := range d.Extra {
		root.Handle(pattern, labelRoute(pattern, h))
	}
	root.Handle("/", s.authenticate(v.middleware(apiMux)))
	if err := s.mountTelemetry(root, d.Telemetry, doc); err != nil {
		return nil, err
	}
	return s.observe(root), nil
}

// HealthCheck answers while the process runs.
func (s *Server) HealthCheck(ctx context.Context, _ api.HealthCheckRequestObject) (api.HealthCheckResponseObject, error) {
	return api.HealthCheck200JSONResponse{Status: api.HealthStatusOk}, nil
}

// ReadyCheck answers 200 when every dependency is healthy and 503 naming the failing ones.
func (s *Server) ReadyCheck(ctx context.Context, _ api.ReadyCheckRequestObject) (api.ReadyCheckResponseObject, error) {
	checks := map[string]string{}
	failed := false
	for name, err := range s.ready.Ready(ctx) {
		if err != nil {
			failed = true
			checks[name] = "unavailable"
			continue
		}
		checks[name] = "ok"
	}
	if failed {
		return api.ReadyCheck503JSONResponse{Status: api.HealthStatusUnavailable, Checks: &checks}, nil
	}
	return api.ReadyCheck200JSONResponse{Status: api.HealthStatusOk, Checks: &checks}, nil
}

// MeGet returns the authenticated caller.
func (s *Server) MeGet(ctx context.Context, _ api.MeGetRequestObject) (api.MeGetResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	return api.MeGet200JSONResponse{UserId: p.UserID, Name: p.Name}, nil
}

// principal returns the caller; the validator guarantees one on secured operations, so a
// missing principal is a wiring bug reported as 500 rather than a 401.
func principal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Principal{}, errors.New("no principal on a secured operation")
	}
	return p, nil
}

// labelRoute names an extra route in metrics and logs by its pattern.
func labelRoute(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.InfoFrom(r.Context()).Route = pattern
		h.ServeHTTP(w, r)
	})
}

// listPage is the body of every list operation: the caller, the page asked for, one service
// call, and the rows in their wire form.
func listPage[T, D any](ctx context.Context, limit *int, cursor *string,
	list func(ctx context.Context, user string, pr page.Request) ([]T, *string, error), dto func(T) D,
) ([]D, *string, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, nil, err
	}
	pr, err := page.Parse(limit, cursor)
	if err != nil {
		return nil, nil, err
	}
	rows, next, err := list(ctx, p.UserID, pr)
	if err != nil {
		return nil, nil, err
	}
	items := make([]D, len(rows))
	for i, r := range rows {
		items[i] = dto(r)
	}
	return items, next, nil
}
