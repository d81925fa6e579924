// Package app wires the service's parts into one App from configuration. cmd/m4sh runs it;
// tests build it the same way, so they exercise the real wiring. Wiring reads top to bottom:
// New and NewCore call small builders in order, each taking what the earlier ones built, and
// event hooks between parts are set once both exist.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/attendance"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/classroom"
	"github.com/m4sh/backend/internal/cluster"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/demo"
	"github.com/m4sh/backend/internal/devtoken"
	"github.com/m4sh/backend/internal/docs"
	"github.com/m4sh/backend/internal/httpapi"
	"github.com/m4sh/backend/internal/httpx"
	"github.com/m4sh/backend/internal/jobs"
	"github.com/m4sh/backend/internal/metrics"
	"github.com/m4sh/backend/internal/natsbus"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/presence"
	"github.com/m4sh/backend/internal/solo"
	"github.com/m4sh/backend/internal/telemetry"
	"github.com/m4sh/backend/internal/telemetry/ingest"
	"github.com/m4sh/backend/internal/tracing"
	"github.com/m4sh/backend/internal/users"
	"github.com/m4sh/backend/internal/webhook"
	"github.com/m4sh/backend/internal/ws"
	"github.com/m4sh/backend/openapi"
)

// App is the wired service: everything serve starts and stops.
type App struct {
	Log     *slog.Logger
	Pool    *pgxpool.Pool
	Metrics *metrics.Registry
	Handler http.Handler // nil for a core built by NewCore
	River   *jobs.Client
	// Telemetry buffers ingested events; Drain flushes it.
	Telemetry *telemetry.Writer
	Blobs     blob.Store
	Solo      *solo.Service
	// Webhooks queues events in the transactions of their changes; nil when WEBHOOK_URL is
	// empty. Deliverer sends them (`m4sh webhooks test` calls it directly).
	Webhooks  *webhook.Publisher
	Deliverer *webhook.Deliverer

	// WS is the presence WebSocket endpoint; serve shuts it down beside the HTTP server,
	// which does not track hijacked connections.
	WS *ws.Server
	// Node is this process's cluster membership (PUBSUB=nats), nil when alone.
	Node *cluster.Node
	// Attendance records presence transitions as attendance spans (with their webhooks):
	// through Node's transactions in a cluster, through the hub's hook when alone.
	Attendance *attendance.Recorder
	bus        *natsbus.Bus

	// Tracing is the OpenTelemetry provider; nil when tracing is off. Close flushes it.
	Tracing *tracing.Provider

	migrator       *postgres.Migrator
	telemetryStore *telemetry.PGStore
	closers        []func() // run by Close, before the pool closes
}

// New wires the whole service from configuration: the core (NewCore), presence, the
// WebSocket server and the HTTP handler. It owns the pool it opens; Close releases it.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	verifier, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	doc, err := api.GetSpec() // parsed once: validation, telemetry limits and /docs share it
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI document: %w", err)
	}
	a, err := NewCore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	checks, err := a.readiness(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	hub, err := a.buildPresence(ctx, cfg, checks)
	if err != nil {
		return nil, err
	}
	userSvc := users.New(db.New(a.Pool), 100_000)
	classrooms := classroom.New(a.Pool, classroom.Options{MaxMembers: cfg.Classroom.MaxMembers, Events: a.Webhooks})
	if a.WS, err = a.buildWS(cfg, verifier, userSvc, classrooms, hub); err != nil {
		return nil, err
	}
	// A removed member's live connections are closed by the WebSocket server, built above.
	wsServer := a.WS
	classrooms.SetOnMemberRemoved(func(_ context.Context, classroomID uuid.UUID, userID string) {
		wsServer.CloseMember(classroomID, userID)
	})
	// An ended session's live connections, on every node, likewise.
	classrooms.SetOnSessionEnded(wsServer.CloseSession)
	d := httpapi.Deps{
		Verifier: verifier, Users: userSvc, Classrooms: classrooms, Presence: hub, Attendance: a.Attendance, Ready: checks,
		BodyTimeout: cfg.HTTP.BodyTimeout, WriteRatePerMin: cfg.HTTP.WriteRatePerMin,
	}
	if cfg.Auth.DevTokens { // config allows it only with the dev secret
		d.DevTokens = devtoken.New(cfg.Auth.Secret, devtoken.Claims{Issuer: cfg.Auth.Issuer,
			Audience: cfg.Auth.Audience, UserClaim: cfg.Auth.UserClaim}, time.Now)
		log.Warn("DEV_TOKENS is on: /api/v1/dev/ mints tokens for anyone (development only)")
	}
	if a.Handler, err = a.buildHandler(cfg, doc, d); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// newVerifier checks the auth settings serve needs and builds the JWT verifier.
func newVerifier(cfg config.Config) (*auth.Verifier, error) {
	if err := cfg.RequireAuth(); err != nil {
		return nil, err
	}
	if err := cfg.RequireTelemetrySalt(); err != nil {
		return nil, err
	}
	pem, err := auth.LoadPublicKeyFile(cfg.Auth.PublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("config: AUTH_JWT_PUBLIC_KEY_FILE: %w", err)
	}
	verifier, err := auth.NewVerifier(auth.Options{
		Secret: cfg.Auth.Secret, PublicKeyPEM: pem, Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience,
		UserClaim: cfg.Auth.UserClaim, Leeway: cfg.Auth.Leeway,
	})
	if err != nil {
		return nil, fmt.Errorf("config: AUTH_JWT_PUBLIC_KEY_FILE: %w", err)
	}
	return verifier, nil
}

// buildPresence returns the presence hub: in process alone, or with PUBSUB=nats a cluster
// node (heartbeat, shared presence rows) and a NATS bus, whose events reach the hub through
// hooks set once the hub exists; the node starts last.
func (a *App) buildPresence(ctx context.Context, cfg config.Config, checks httpapi.Checks) (*presence.Hub, error) {
	opts := presence.Options{
		Bus:         presence.NewLocalBus(),
		CursorRate:  float64(cfg.WS.CursorRatePerSec),
		CursorBurst: cfg.WS.CursorBurst,
		DropLimit:   cfg.WS.CursorRatePerSec,
		Caps:        presence.Caps{PerUser: cfg.WS.MaxConnsPerUser, PerSession: cfg.WS.MaxConnsPerSession},
		LeaveGrace:  cfg.WS.LeaveGrace,
	}
	a.Attendance = attendance.New(a.Pool, a.Log, a.Webhooks)
	a.Metrics.MustRegister(a.Attendance.Collectors()...)
	node := cluster.New(a.Pool, cluster.Options{
		Log: a.Log, HeartbeatInterval: cfg.Cluster.HeartbeatInterval, PurgeAfter: cfg.Cluster.PurgeAfter,
		LeaveGrace: cfg.WS.LeaveGrace, Recorder: a.Attendance,
	})
	if cfg.Cluster.PubSub != "nats" {
		// Alone, the node only beats and sweeps: its heartbeat dates the end of the spans it
		// tags should this process be killed, and its first sweep ends those of one that was.
		opts.OnTransition = a.Attendance.Transition
		a.Attendance.Start(node.ID())
		hub := presence.NewHub(opts)
		node.SetHooks(hub.PublishLeave, hub.Reassert)
		node.Start(ctx)
		a.closers = append(a.closers, func() { a.closeAttendance(node) })
		return hub, nil
	}
	a.Node = node
	bus, err := natsbus.Connect(natsbus.Options{URL: cfg.Cluster.NATSURL, Node: a.Node.ID(), Log: a.Log, Name: "m4sh " + a.Node.ID().String(), Tracing: a.Tracing})
	if err != nil {
		return nil, err
	}
	a.bus = bus
	checks["nats"] = func(context.Context) error { return bus.Check() }
	a.Metrics.MustRegister(append(bus.Collectors(), a.Node.Collectors()...)...)
	opts.Bus, opts.Directory = bus, a.Node
	hub := presence.NewHub(opts)
	a.Node.SetHooks(hub.PublishLeave, hub.Reassert)
	// The node hands first arrivals and last departures to the writer once committed; Close
	// stops the node first, then writes what is queued.
	a.Attendance.StartCluster()
	a.closers = append(a.closers, a.stopAttendance)
	a.Node.Start(ctx)
	return hub, nil
}

// closeAttendance writes the queued transitions of a node alone, ends its open spans and
// then its heartbeat at shutdown (kept when spans stay open: the next node's sweep ends
// them). A cluster node's users are left to the others' sweep (cluster.Node.Stop).
func (a *App) closeAttendance(node *cluster.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Attendance.Stop(ctx)
	if err := a.Attendance.CloseOwn(ctx); err != nil {
		a.Log.Warn("attendance: ending open spans at shutdown", "err", err)
	}
	node.Stop(ctx)
}

// stopAttendance writes what a cluster node queued for the attendance writer, at shutdown.
func (a *App) stopAttendance() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Attendance.Stop(ctx)
}

// buildWS returns the presence WebSocket server.
func (a *App) buildWS(cfg config.Config, verifier *auth.Verifier, userSvc *users.Service, roles *classroom.Service, hub *presence.Hub) (*ws.Server, error) {
	schemas, err := ws.CompileSchemas(asyncapi.YAML)
	if err != nil {
		return nil, err
	}
	return ws.New(ws.Deps{
		Log:        a.Log,
		Registerer: a.Metrics,
		Verifier:   verifier,
		Users:      userSvc,
		Roles:      roles,
		Hub:        hub,
		Schemas:    schemas,
		Options: ws.Options{
			MaxPayloadBytes: cfg.WS.MaxPayloadBytes,
			AllowedOrigins:  cfg.WS.AllowedOrigins,
			PingInterval:    cfg.WS.PingInterval,
			PongTimeout:     cfg.WS.PongTimeout,
			WriteTimeout:    cfg.WS.WriteTimeout,
			SendQueue:       cfg.WS.SendQueue,
			MaxWritePause:   cfg.WS.MaxWritePause,
		},
	}), nil
}

// buildHandler returns the whole HTTP handler: the API (d completed with what the App
// holds), the telemetry ingest's throttle and the routes beside the API.
func (a *App) buildHandler(cfg config.Config, doc *openapi3.T, d httpapi.Deps) (http.Handler, error) {
	docsHandler, err := docs.Handler(doc, asyncapi.YAML)
	if err != nil {
		return nil, err
	}
	tc := cfg.Telemetry
	limiter := telemetry.NewLimiter(telemetry.LimiterOptions{Limit: tc.RatePerMin, Window: time.Minute, MaxClients: tc.MaxClients})
	a.Metrics.MustRegister(limiter.Collector())
	d.Log, d.Metrics, d.Doc, d.Solo = a.Log, a.Metrics, doc, a.Solo
	d.Telemetry = ingest.Options{
		Sink:     a.Telemetry,
		Limiter:  limiter,
		Proxies:  httpx.Proxies(tc.TrustedProxies),
		Hasher:   telemetry.NewHasher(tc.HashSalt),
		MaxBytes: tc.MaxBytes,
	}
	d.Extra = map[string]http.Handler{
		"GET /metrics":       a.Metrics.Handler(),
		"GET /openapi.yaml":  staticFile("application/yaml", openapi.YAML),
		"GET /asyncapi.yaml": staticFile("application/yaml", asyncapi.YAML),
		"GET /docs":          docsHandler,
		"GET /docs/":         docsHandler, // the AsyncAPI page, the plain page and the renderers' files
		"GET /demo":          demo.Handler(),
		"GET /demo/":         demo.Handler(),
		"GET /ws/classroom/{class_id}/session/{session_id}/{$}": a.WS,
	}
	h, err := httpapi.NewHandler(d)
	if err != nil {
		return nil, err
	}
	return tracing.Handler(h, a.Tracing), nil
}

// NewCore wires what every process needs, HTTP or not: the pool, metrics, the blob store, the
// feature services and the River client with every feature's background work. Operator
// commands (`m4sh gc`) run jobs through it without serving HTTP or needing JWT keys.
func NewCore(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	tp, err := buildTracing(ctx, cfg.Tracing)
	if err != nil {
		return nil, err
	}
	pool, err := postgres.ConnectTraced(ctx, cfg.DatabaseURL, cfg.DBMaxConns, tracing.NewPGX(tp))
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, err
	}
	a := &App{Log: log, Pool: pool, Metrics: metrics.New(), Tracing: tp}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if err := a.checkSchema(ctx); err != nil {
		return nil, err
	}
	a.buildTelemetry(cfg.Telemetry)
	if a.Blobs, err = NewBlobStore(ctx, cfg.Solo); err != nil {
		return nil, err
	}
	a.Solo = NewSolo(pool, tracing.Blobs(a.Blobs, tp), cfg.Solo, log, a.Metrics)
	work := []jobs.Work{
		jobs.TelemetryPartitions(&jobs.TelemetryPartitionsWorker{
			Maintenance: telemetry.Maintenance{Store: a.telemetryStore, Retention: time.Duration(cfg.Telemetry.RetentionDays) * 24 * time.Hour},
			Log:         log,
		}),
		a.Solo.Work(),
	}
	if a.Deliverer, err = NewDeliverer(cfg.Webhook, log, a.Metrics); err != nil {
		return nil, err
	}
	if a.Deliverer != nil {
		work = append(work, a.Deliverer.Work(a.Pool))
	}
	if a.River, err = jobs.New(pool, jobs.Config{Log: log, Middleware: tracing.River(tp), Work: work}); err != nil {
		return nil, err
	}
	if err := a.buildWebhooks(cfg.Webhook); err != nil {
		return nil, err
	}
	a.Metrics.MustRegister(a.River.Collectors(log)...)
	ok = true
	return a, nil
}

// buildTracing returns the OpenTelemetry provider, nil (off) without an OTLP endpoint.
func buildTracing(ctx context.Context, tc config.Tracing) (*tracing.Provider, error) {
	return tracing.New(ctx, tracing.Config{
		Endpoint: tc.Endpoint, Sampler: tc.Sampler, SamplerArg: tc.SamplerArg, ServiceName: tc.ServiceName,
	})
}

// NewDeliverer checks the webhook settings and returns the deliverer, nil when WEBHOOK_URL
// is empty. A malformed WEBHOOK_SECRET or an unknown name in WEBHOOK_EVENTS is a start-up
// error naming the variable. reg may be nil (no metrics).
func NewDeliverer(cfg config.Webhook, log *slog.Logger, reg prometheus.Registerer) (*webhook.Deliverer, error) {
	if cfg.URL == "" {
		return nil, nil
	}
	secret, err := webhook.ParseSecret(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("config: WEBHOOK_SECRET: %w", err)
	}
	if _, err := webhook.ParseEvents(cfg.Events); err != nil {
		return nil, fmt.Errorf("config: WEBHOOK_EVENTS: %w", err)
	}
	sched := webhook.DefaultSchedule
	if r := cfg.Retry; r.Base > 0 {
		sched = webhook.Schedule{Base: r.Base, Cap: r.Cap, For: r.For}
	}
	return webhook.NewDeliverer(webhook.Options{
		URL: cfg.URL, Secret: secret, Timeout: cfg.Timeout, Workers: cfg.Workers, Schedule: sched,
		FetchPollInterval: cfg.Retry.Poll, Log: log, Registerer: reg,
	}), nil
}

// buildWebhooks returns the publisher features queue events through, over the River
// client, with its oldest-pending gauge; none when webhooks are off.
func (a *App) buildWebhooks(cfg config.Webhook) error {
	if a.Deliverer == nil {
		return nil
	}
	events, err := webhook.ParseEvents(cfg.Events)
	if err != nil {
		return fmt.Errorf("config: WEBHOOK_EVENTS: %w", err)
	}
	a.Webhooks = webhook.NewPublisher(a.River.Client, events, a.Deliverer.MaxAttempts())
	a.Solo.SetEvents(a.Webhooks)
	webhook.RegisterOldestGauge(a.Metrics, a.River.Client)
	return nil
}

// checkSchema builds the migrator /readyz asks, and warns at start when the schema is behind.
func (a *App) checkSchema(ctx context.Context) error {
	var err error
	if a.migrator, err = postgres.NewSchemaMigrator(a.Pool, a.Log); err != nil {
		return err
	}
	if st, err := a.migrator.Status(ctx); err != nil || !st.Current() {
		a.Log.WarnContext(ctx, "schema is not current: run `m4sh migrate up`; /readyz answers 503 until then", "pending", st.Pending, "err", err)
	}
	return nil
}

// buildTelemetry builds the best-effort buffered telemetry writer over its COPY store.
func (a *App) buildTelemetry(tc config.Telemetry) {
	a.telemetryStore = telemetry.NewPGStore(a.Pool)
	a.Telemetry = telemetry.NewWriter(a.telemetryStore, telemetry.WriterOptions{
		BufferEvents: tc.BufferEvents, BufferBytes: tc.BufferBytes,
		FlushEvents: tc.FlushEvents, FlushInterval: tc.FlushInterval,
	}, a.Metrics, a.Log)
}

// Drain flushes what background producers hold after the HTTP server has stopped: the
// buffered telemetry events. serve calls it after http.Server.Shutdown, within the shutdown
// deadline ctx.
func (a *App) Drain(ctx context.Context) error {
	if err := a.Telemetry.Close(ctx); err != nil {
		return fmt.Errorf("flushing telemetry: %w", err)
	}
	return nil
}

// Close leaves the cluster and releases the pool, after a short last flush of telemetry
// when Drain was not called.
func (a *App) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if a.Telemetry != nil {
		_ = a.Telemetry.Close(ctx)
	}
	if a.Node != nil {
		a.Node.Stop(ctx)
	}
	if a.bus != nil {
		a.bus.Close()
	}
	for _, c := range a.closers {
		c()
	}
	a.Pool.Close()
	// Last: the spans of everything above are flushed to the collector.
	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer tcancel()
	if err := a.Tracing.Shutdown(tctx); err != nil {
		a.Log.Warn("tracing shutdown", "err", err)
	}
}

func staticFile(contentType string, body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	})
}

// NewSolo returns the solo workspace service over pool and blobs; its metrics go to reg
// when it is not nil.
func NewSolo(pool *pgxpool.Pool, blobs blob.Store, cfg config.Solo, log *slog.Logger, reg prometheus.Registerer) *solo.Service {
	return solo.New(pool, blobs, log, reg, solo.Options{
		DefaultQuota:     cfg.QuotaBytes,
		MaxSnapshotBytes: cfg.SnapshotMaxBytes,
		UploadsInFlight:  cfg.UploadsInFlight,
		DeletionGrace:    deletionGrace(cfg.DeletionGrace),
		ReadMemory:       cfg.ReadMemory,
		KeepLast:         cfg.KeepLast,
		GCInterval:       cfg.GCInterval,
	})
}

// deletionGrace maps SOLO_SNAPSHOT_DELETION_GRACE to solo.Options, where 0 means the default and a
// negative value none.
func deletionGrace(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// NewBlobStore returns the configured blob store (STORAGE_BACKEND): local directory or S3.
// An unreachable S3 bucket is a start-up error naming the variable.
func NewBlobStore(ctx context.Context, cfg config.Solo) (blob.Store, error) {
	switch cfg.StorageBackend {
	case "local":
		s, err := blob.NewLocal(cfg.StorageDir)
		if err != nil {
			return nil, fmt.Errorf("config: STORAGE_DIR: %w", err)
		}
		return s, nil
	case "s3":
		o := blob.S3Options{
			Endpoint: cfg.S3.Endpoint, Region: cfg.S3.Region, Bucket: cfg.S3.Bucket,
			Prefix: cfg.S3.Prefix, ForcePathStyle: cfg.S3.ForcePathStyle,
		}
		if cfg.S3.AccessKeyID != "" && cfg.S3.SecretAccessKey != "" {
			o.Credentials = credentials.NewStaticCredentialsProvider(cfg.S3.AccessKeyID, cfg.S3.SecretAccessKey, cfg.S3.SessionToken)
		}
		return blob.NewS3(ctx, o)
	default:
		return nil, fmt.Errorf("config: STORAGE_BACKEND: %q is not supported", cfg.StorageBackend)
	}
}
