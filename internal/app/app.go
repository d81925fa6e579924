// Package app wires the service's parts into one App from configuration. cmd/m4sh runs it;
// tests build it the same way, so they exercise the real wiring.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/classroom"
	"github.com/m4sh/backend/internal/cluster"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/demo"
	"github.com/m4sh/backend/internal/docs"
	"github.com/m4sh/backend/internal/httpapi"
	"github.com/m4sh/backend/internal/httpx"
	"github.com/m4sh/backend/internal/jobs"
	"github.com/m4sh/backend/internal/metrics"
	"github.com/m4sh/backend/internal/natsbus"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/presence"
	"github.com/m4sh/backend/internal/retention"
	"github.com/m4sh/backend/internal/solo"
	"github.com/m4sh/backend/internal/telemetry"
	"github.com/m4sh/backend/internal/telemetry/ingest"
	"github.com/m4sh/backend/internal/users"
	"github.com/m4sh/backend/internal/ws"
	"github.com/m4sh/backend/openapi"
	"github.com/m4sh/backend/queries"
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
	Retention *retention.Service

	// WS is the presence WebSocket endpoint; serve shuts it down beside the HTTP server,
	// which does not track hijacked connections.
	WS *ws.Server
	// Node is this process's cluster membership (PUBSUB=nats), nil when alone.
	Node *cluster.Node
	bus  *natsbus.Bus

	migrator       *postgres.Migrator
	telemetryStore *telemetry.PGStore
}

// New wires the whole service from configuration: the core (NewCore) plus the HTTP handler.
// It owns the pool it opens; Close releases it.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
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
	tc := cfg.Telemetry
	limiter := telemetry.NewLimiter(telemetry.LimiterOptions{Limit: tc.RatePerMin, Window: time.Minute, MaxClients: tc.MaxClients})
	a.Metrics.MustRegister(limiter.Collector())
	doc, err := api.GetSwagger()
	if err != nil {
		return nil, err
	}
	docsHandler, err := docs.Handler(doc, asyncapi.YAML)
	if err != nil {
		return nil, err
	}
	checks := httpapi.Checks{
		"database": func(ctx context.Context) error { return a.Pool.Ping(ctx) },
		"migrations": func(ctx context.Context) error {
			st, err := a.migrator.Status(ctx)
			if err != nil {
				return err
			}
			if !st.Current() {
				return fmt.Errorf("pending migrations %v (river current: %t)", st.Pending, st.RiverCurrent)
			}
			return nil
		},
	}
	if s3, isS3 := a.Blobs.(*blob.S3); isS3 {
		checks["blob_store"] = s3.Check
	}
	schemas, err := ws.CompileSchemas(asyncapi.YAML)
	if err != nil {
		return nil, err
	}
	userSvc := users.New(db.New(a.Pool), 100_000)
	hubOpts := presence.Options{
		Bus:         presence.NewLocalBus(),
		CursorRate:  float64(cfg.WS.CursorRatePerSec),
		CursorBurst: cfg.WS.CursorBurst,
		DropLimit:   cfg.WS.CursorRatePerSec,
	}
	var hub *presence.Hub
	if cfg.Cluster.PubSub == "nats" {
		// Several nodes: fan-out over NATS, presence shared in PostgreSQL.
		a.Node = cluster.New(a.Pool, cluster.Options{
			Log:               log,
			HeartbeatInterval: cfg.Cluster.HeartbeatInterval,
			PurgeAfter:        cfg.Cluster.PurgeAfter,
			OnDeparted:        func(session uuid.UUID, userID string) { hub.PublishLeave(session, userID) },
			OnPurged:          func(ctx context.Context) { hub.Reassert(ctx) },
		})
		if a.bus, err = natsbus.Connect(natsbus.Options{URL: cfg.Cluster.NATSURL, Node: a.Node.ID(), Log: log, Name: "m4sh " + a.Node.ID().String()}); err != nil {
			return nil, err
		}
		a.bus.OnControl(func(c natsbus.Control) { hub.CloseLocalUser(c.ClassroomID, c.UserID, c.Code, c.Reason) })
		checks["nats"] = func(context.Context) error { return a.bus.Check() }
		hubOpts.Bus, hubOpts.Directory = a.bus, a.Node
	}
	hub = presence.NewHub(hubOpts)
	if a.Node != nil {
		a.Node.Start(ctx)
	}
	classrooms := classroom.New(a.Pool, classroom.Options{
		MaxMembers: cfg.Classroom.MaxMembers,
		// The WS server is created below; the closure reads it when a removal commits.
		OnMemberRemoved: func(_ context.Context, classroomID uuid.UUID, userID string) {
			a.WS.CloseMember(classroomID, userID)
		},
	})
	a.WS = ws.New(ws.Deps{
		Log:        log,
		Registerer: a.Metrics,
		Verifier:   verifier,
		Users:      userSvc,
		Roles:      classrooms,
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
	})
	a.Handler, err = httpapi.NewHandler(httpapi.Deps{
		Log:        log,
		Metrics:    a.Metrics,
		Verifier:   verifier,
		Users:      userSvc,
		Classrooms: classrooms,
		Presence:   hub,
		Solo:       a.Solo,
		Telemetry: ingest.Options{
			Sink:     a.Telemetry,
			Limiter:  limiter,
			Proxies:  httpx.Proxies(tc.TrustedProxies),
			Hasher:   telemetry.NewHasher(tc.HashSalt),
			MaxBytes: tc.MaxBytes,
		},
		Ready: checks,
		Extra: map[string]http.Handler{
			"GET /metrics":       a.Metrics.Handler(),
			"GET /openapi.yaml":  staticFile("application/yaml", openapi.YAML),
			"GET /asyncapi.yaml": staticFile("application/yaml", asyncapi.YAML),
			"GET /docs":          docsHandler,
			"GET /docs/{$}":      docsHandler,
			"GET /demo":          demo.Handler(),
			"GET /demo/":         demo.Handler(),
			"GET /ws/classroom/{class_id}/session/{session_id}/{$}": a.WS,
		},
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// NewCore wires what every process needs, HTTP or not: the pool, metrics, the blob store, the
// feature services and the River client with every worker and periodic job. Operator
// commands (`m4sh gc`) run jobs through it without serving HTTP or needing JWT keys.
func NewCore(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	pool, err := postgres.Connect(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, err
	}
	a := &App{Log: log, Pool: pool, Metrics: metrics.New()}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if a.migrator, err = NewMigrator(pool, log); err != nil {
		return nil, err
	}
	if st, err := a.migrator.Status(ctx); err != nil || !st.Current() {
		log.WarnContext(ctx, "schema is not current: run `m4sh migrate up`; /readyz answers 503 until then", "pending", st.Pending, "err", err)
	}

	// Telemetry: a best-effort buffered writer and daily partitions.
	tc := cfg.Telemetry
	a.telemetryStore = telemetry.NewPGStore(pool)
	a.Telemetry = telemetry.NewWriter(a.telemetryStore, telemetry.WriterOptions{
		BufferEvents: tc.BufferEvents, BufferBytes: tc.BufferBytes,
		FlushEvents: tc.FlushEvents, FlushInterval: tc.FlushInterval,
	}, a.Metrics, log)

	// Solo snapshots, their blob store and retention.
	if a.Blobs, err = NewBlobStore(ctx, cfg.Solo); err != nil {
		return nil, err
	}
	a.Solo = NewSolo(pool, a.Blobs, cfg.Solo, log)
	a.Retention = retention.New(pool, a.Blobs, log, a.Metrics, retention.Config{
		KeepLast: cfg.Solo.KeepLast, Interval: cfg.Solo.GCInterval,
	})

	workers := river.NewWorkers()
	periodic := []*river.PeriodicJob{
		jobs.AddTelemetryPartitions(workers, &jobs.TelemetryPartitionsWorker{
			Maintenance: telemetry.Maintenance{Store: a.telemetryStore, Retention: time.Duration(tc.RetentionDays) * 24 * time.Hour},
			Log:         log,
		}),
	}
	periodic = append(periodic, a.Retention.Register(workers)...)
	jobsCfg := jobs.Config{Log: log, Workers: workers, WorkerCount: 1 + retention.WorkerCount, PeriodicJobs: periodic}
	jobsCfg = jobs.AddSoloReaper(jobsCfg, a.Solo)
	if a.River, err = jobs.New(pool, jobsCfg); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
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
	a.Pool.Close()
}

func staticFile(contentType string, body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	})
}

// NewSolo returns the solo workspace service over pool and blobs.
func NewSolo(pool *pgxpool.Pool, blobs blob.Store, cfg config.Solo, log *slog.Logger) *solo.Service {
	return solo.New(pool, blobs, log, solo.Options{
		DefaultQuota:     cfg.QuotaBytes,
		MaxSnapshotBytes: cfg.SnapshotMaxBytes,
	})
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

// NewMigrator returns the migrator for the project's migrations over pool.
func NewMigrator(pool *pgxpool.Pool, log *slog.Logger) (*postgres.Migrator, error) {
	migs, err := postgres.LoadMigrations(queries.Migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return postgres.NewMigrator(pool, migs, log)
}
