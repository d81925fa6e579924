// Package apptest runs the fully wired service (internal/app) against a fresh test database
// behind a real loopback HTTP server, with helpers to mint tokens and call the API.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/gen/api"

	"github.com/m4sh/backend/internal/app"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/s3test"
)

// Secret is the HS256 secret of test servers.
const Secret = "apptest-secret-0123456789abcdefghijklmnopqrstuvwxyz"

// Env is one running service.
type Env struct {
	T      testing.TB
	App    *app.App
	Pool   *pgxpool.Pool
	Server *httptest.Server
	Config config.Config
	router routers.Router
	stop   func()
}

// New starts the service on a fresh database. env overrides configuration variables.
func New(t testing.TB, env map[string]string) *Env {
	t.Helper()
	return Start(t, dbtest.NewURL(t), env, nil)
}

// Start starts the service on the database at url, which may already hold data (a restart).
// env overrides configuration variables; edit, when not nil, changes what no variable sets.
func Start(t testing.TB, url string, env map[string]string, edit func(*config.Config)) *Env {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL":    url,
		"AUTH_JWT_SECRET": Secret,
		"LOG_LEVEL":       "warn",
		// Each service gets its own blob store: tests must not see (or sweep) each other's.
		"STORAGE_DIR": t.TempDir(),
		// Leaves at once unless a test is about the leave grace (it sets WS_LEAVE_GRACE).
		"WS_LEAVE_GRACE": "0",
		// Freed snapshot bytes go at once, so that tests waiting for GC's deletions (and
		// `m4sh gc snapshots`) finish; TestReadSurvivesGC covers the grace itself.
		"SOLO_SNAPSHOT_DELETION_GRACE": "0s",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatalf("apptest: config: %v", err)
	}
	if edit != nil {
		edit(&cfg)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("apptest: app: %v", err)
	}
	if err := a.River.Start(ctx); err != nil {
		t.Fatalf("apptest: river: %v", err)
	}
	srv := httptest.NewServer(a.Handler)
	stop := sync.OnceFunc(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		// As serve does: hijacked WebSockets outlive srv.Close, and with them their
		// goroutines and presence rooms.
		_ = a.WS.Shutdown(sctx)
		srv.Close()
		_ = a.River.Stop(sctx)
		cancel()
		a.Close()
	})
	t.Cleanup(stop)
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{T: t, App: a, Pool: a.Pool, Server: srv, Config: cfg, router: router, stop: stop}
}

// Stop stops the service as a shutdown does (River's running jobs are waited for), before
// the test ends; a Start on the same database then plays a restart.
func (e *Env) Stop() { e.stop() }

// S3Env returns configuration overrides that put the service's blobs in a fresh bucket of
// the real S3-compatible test server (internal/s3test).
func S3Env(t testing.TB) map[string]string {
	t.Helper()
	o := s3test.Bucket(t)
	creds, err := o.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"STORAGE_BACKEND": "s3", "S3_ENDPOINT": o.Endpoint, "S3_REGION": o.Region, "S3_BUCKET": o.Bucket,
		"S3_FORCE_PATH_STYLE": "true", "AWS_ACCESS_KEY_ID": creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
	}
}

// checkResponse fails the test when a response of a documented operation does not match the
// OpenAPI document (undocumented status, wrong content type, body not matching the schema),
// so that the document cannot drift from what the server does.
func (e *Env) checkResponse(req *http.Request, status int, header http.Header, body []byte) {
	e.T.Helper()
	// Match as the server saw it: a path without scheme and host.
	req = req.Clone(context.Background())
	req.URL.Scheme, req.URL.Host = "", ""
	route, params, err := e.router.FindRoute(req)
	if err != nil {
		return // not an operation of the document (404/405 answers, ops endpoints)
	}
	called.Store(route.Operation.OperationID, true)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		e.T.Errorf("%s %s answered %d, which the OpenAPI document does not allow: %v\nbody: %.500s",
			req.Method, req.URL.Path, status, err, body)
	}
}

// testWriter sends logs to t.Log so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Token mints a valid one-hour access token for user.
func (e *Env) Token(user string) string {
	e.T.Helper()
	tok, err := auth.Mint([]byte(Secret), auth.MintOptions{UserID: user, Name: strings.ToUpper(user[:1]) + user[1:], TTL: time.Hour})
	if err != nil {
		e.T.Fatal(err)
	}
	return tok
}

// Response is a finished request with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %T: %v: %s", v, err, r.Body)
	}
}

// Request describes one call.
type Request struct {
	Method  string
	Path    string
	Token   string // sent as Authorization: Bearer when set
	Body    any    // JSON-encoded unless []byte or string
	Header  map[string]string
	NoAuth  bool
	RawAuth string // sent verbatim as Authorization when set
}

// Do sends req to the server.
func (e *Env) Do(req Request) Response {
	e.T.Helper()
	var body io.Reader
	ct := ""
	switch b := req.Body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
		ct = "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		body = bytes.NewReader(j)
		ct = "application/json"
	}
	r, err := http.NewRequest(req.Method, e.Server.URL+req.Path, body)
	if err != nil {
		e.T.Fatal(err)
	}
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if req.Token != "" {
		r.Header.Set("Authorization", "Bearer "+req.Token)
	}
	if req.RawAuth != "" {
		r.Header.Set("Authorization", req.RawAuth)
	}
	for k, v := range req.Header {
		r.Header.Set(k, v)
	}
	resp, err := e.Server.Client().Do(r)
	if err != nil {
		e.T.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T.Fatal(err)
	}
	e.checkResponse(r, resp.StatusCode, resp.Header, b)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
