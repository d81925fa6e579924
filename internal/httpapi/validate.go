package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/httpx"
)

// streamingBodyExt marks operations whose body the handler reads and limits itself (binary
// snapshots, telemetry with gzip): the validator leaves such bodies unread.
const streamingBodyExt = "x-m4sh-streaming-body"

// uuidPattern accepts any hyphenated 128-bit id, whatever its version bits: PostgreSQL
// stores them all, and a well-formed id that names nothing is a 404, not a 400.
const uuidPattern = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`

// defaultMaxJSONBody bounds every JSON request body the validator reads.
const defaultMaxJSONBody = 64 << 10

// validator checks every request against the OpenAPI document before any handler runs:
// route (404/405), security (401), parameters and body (400 validation_error).
type validator struct {
	router routers.Router
	opts   *openapi3filter.Options
	log    *slog.Logger
}

func newValidator(doc *openapi3.T, log *slog.Logger) (*validator, error) {
	// The document's servers are irrelevant to routing here: match paths as they are.
	doc.Servers = openapi3.Servers{{URL: "/"}}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("building OpenAPI router: %w", err)
	}
	return &validator{
		log:    log,
		router: r,
		opts: &openapi3filter.Options{
			MultiError:         true,
			AuthenticationFunc: requirePrincipal,
			// kin-openapi checks no uuid format unless told; ids in paths and bodies are UUIDs.
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(uuidPattern)),
			},
		},
	}, nil
}

// requirePrincipal satisfies the bearerAuth scheme when authenticate found a valid token.
func requirePrincipal(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	if _, ok := auth.FromContext(in.RequestValidationInput.Request.Context()); ok {
		return nil
	}
	return errors.New("no valid bearer token")
}

func (v *validator) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, err := v.router.FindRoute(r)
		var routeErr *routers.RouteError
		switch {
		case errors.As(err, &routeErr) && routeErr.Reason == routers.ErrMethodNotAllowed.Error():
			w.Header().Set("Allow", strings.Join(v.allowed(r), ", "))
			writeError(w, r, v.log, apperr.New(apperr.MethodNotAllowed, "method %s is not allowed on this route", r.Method))
			return
		case err != nil:
			writeError(w, r, v.log, apperr.New(apperr.NotFound, "no such route"))
			return
		}
		httpx.InfoFrom(r.Context()).Route = route.Path
		opts := *v.opts
		vr := r
		if _, ok := route.Operation.Extensions[streamingBodyExt]; ok {
			opts.ExcludeRequestBody = true
			// kin-openapi's security check reads the whole body into memory (in case an
			// AuthenticationFunc wants it), ExcludeRequestBody or not: validate a copy of the
			// request without a body, so that only the handler reads, and limits, it.
			vr = r.WithContext(r.Context())
			vr.Body = http.NoBody
		} else if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, defaultMaxJSONBody)
		}
		in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: &opts}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			writeError(w, r, v.log, requestError(r, err))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowed lists the methods the document defines for the request's path.
func (v *validator) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, _, err := v.router.FindRoute(probe); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// requestError turns a kin-openapi validation error into our error kinds.
func requestError(r *http.Request, err error) error {
	var secErr *openapi3filter.SecurityRequirementsError
	if errors.As(err, &secErr) {
		cause := httpx.InfoFrom(r.Context()).AuthErr
		if cause == nil {
			return apperr.New(apperr.Unauthorized, "a bearer token is required")
		}
		if errors.Is(cause, auth.ErrExpired) {
			return apperr.Wrap(apperr.Unauthorized, cause, "the bearer token has expired")
		}
		return apperr.Wrap(apperr.Unauthorized, cause, "the bearer token is not valid")
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return apperr.Wrap(apperr.TooLarge, err, fmt.Sprintf("the request body exceeds %d bytes", tooBig.Limit))
	}
	fields := httpx.FieldErrors(err)
	for _, f := range fields {
		if f.Field == "header.Content-Type" {
			return &apperr.Error{Kind: apperr.UnsupportedMedia, Message: f.Message, Fields: fields, Err: err}
		}
	}
	return &apperr.Error{Kind: apperr.Invalid, Message: "the request does not match the API contract", Fields: fields, Err: err}
}
