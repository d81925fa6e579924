package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

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

// maxJSONBody bounds every JSON request body (README: Hostile input and load): larger is 413.
const maxJSONBody = 64 << 10

// validator checks every request against the OpenAPI document before any handler runs,
// cheapest refusals first, so that nothing is read from a client that will be refused
// anyway: route (404/405), path and query strings (400), security (401), the write
// throttle (429), the declared Content-Length (413); only then the body, read under its
// deadline and limit, strict JSON (400) and the schema (400 validation_error).
type validator struct {
	router   routers.Router
	opts     *openapi3filter.Options
	log      *slog.Logger
	throttle *writeThrottle
}

func newValidator(doc *openapi3.T, log *slog.Logger, throttle *writeThrottle) (*validator, error) {
	// The document's servers are irrelevant to routing here: match paths as they are.
	doc.Servers = openapi3.Servers{{URL: "/"}}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("building OpenAPI router: %w", err)
	}
	return &validator{
		log:      log,
		router:   r,
		throttle: throttle,
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
		if err := v.check(w, r); err != nil {
			writeError(w, r, v.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check runs the validator's steps in order; on success r's body (if read) holds the bytes
// that were validated.
func (v *validator) check(w http.ResponseWriter, r *http.Request) error {
	route, params, err := v.router.FindRoute(r)
	var routeErr *routers.RouteError
	switch {
	case errors.As(err, &routeErr) && routeErr.Reason == routers.ErrMethodNotAllowed.Error():
		w.Header().Set("Allow", strings.Join(v.allowed(r), ", "))
		return apperr.New(apperr.MethodNotAllowed, "method %s is not allowed on this route", r.Method)
	case err != nil:
		return apperr.New(apperr.NotFound, "no such route")
	}
	httpx.InfoFrom(r.Context()).Route = route.Path
	if err := checkStrings(params, r.URL.RawQuery); err != nil {
		return err
	}
	// The security check gets a copy without a body: kin-openapi reads the whole body for
	// it (in case an AuthenticationFunc wants it), and a refused caller must cost nothing.
	bodiless := r
	if r.Body != nil && r.Body != http.NoBody {
		bodiless = r.WithContext(r.Context())
		bodiless.Body = http.NoBody
	}
	in := &openapi3filter.RequestValidationInput{Request: bodiless, PathParams: params, Route: route, Options: v.opts}
	security := route.Operation.Security
	if security == nil {
		security = &route.Spec.Security
	}
	if err := openapi3filter.ValidateSecurityRequirements(r.Context(), in, *security); err != nil {
		return requestError(r, err)
	}
	if _, ok := route.Operation.Extensions[writeThrottleExt]; ok {
		if p, ok := auth.FromContext(r.Context()); ok {
			if ok, wait := v.throttle.allow(p.UserID); !ok {
				return &apperr.Error{Kind: apperr.RateLimited, RetryAfter: wait,
					Message: fmt.Sprintf("at most %d creations per minute; retry later", v.throttle.limit)}
			}
		}
	}
	opts := *v.opts
	// Security passed above; kin-openapi checks it again, against the in-memory body only.
	opts.AuthenticationFunc = openapi3filter.NoopAuthenticationFunc
	if _, ok := route.Operation.Extensions[streamingBodyExt]; ok || route.Operation.RequestBody == nil {
		// The handler reads, and limits, a streaming body itself; an operation without a
		// body leaves whatever was sent unread (and the answer closes the connection).
		opts.ExcludeRequestBody = true
	} else if err := readJSONBody(r); err != nil {
		return err
	} else {
		in.Request = r
	}
	in.Options = &opts
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return requestError(r, err)
	}
	return nil
}

// readJSONBody reads the body of a JSON operation (refusing a declared length over the
// limit before reading anything), checks it is strict JSON when it says it is JSON, and
// puts the bytes back for the schema check and the handler.
func readJSONBody(r *http.Request) error {
	if r.ContentLength > maxJSONBody {
		return errTooLarge(maxJSONBody)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b, err := readBody(r.Body, maxJSONBody)
	if err != nil {
		return err
	}
	if len(b) > 0 && isJSON(r.Header.Get("Content-Type")) {
		if err := checkStrictJSON(b); err != nil {
			return err
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return nil
}

// isJSON reports whether a Content-Type is JSON; other types are left to the schema check,
// which answers 415.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// checkStrings refuses path and query values that no route can mean and PostgreSQL cannot
// store: U+0000 and bytes that are not UTF-8 (README: Hostile input and load).
func checkStrings(params map[string]string, rawQuery string) error {
	var fields []apperr.FieldError
	bad := func(field, s string) {
		switch {
		case strings.IndexByte(s, 0) >= 0:
			fields = append(fields, apperr.FieldError{Field: field, Message: "must not contain U+0000"})
		case !utf8.ValidString(s):
			fields = append(fields, apperr.FieldError{Field: field, Message: "must be UTF-8"})
		}
	}
	for name, v := range params {
		bad("path."+name, v)
	}
	var query url.Values
	if rawQuery != "" {
		query, _ = url.ParseQuery(rawQuery) // what is unparsable is left to the schema check
	}
	for name, vs := range query {
		bad("query."+name, name)
		for _, v := range vs {
			bad("query."+name, v)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
	return apperr.Validation("the request does not match the API contract", fields...)
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
	fields := httpx.FieldErrors(err)
	for _, f := range fields {
		if f.Field == "header.Content-Type" {
			return &apperr.Error{Kind: apperr.UnsupportedMedia, Message: f.Message, Fields: fields, Err: err}
		}
	}
	return &apperr.Error{Kind: apperr.Invalid, Message: "the request does not match the API contract", Fields: fields, Err: err}
}
