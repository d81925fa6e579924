// Package app wires the service's parts into one App from configuration. cmd/m4sh runs it;
// tests build it the same way, so they exercise the real wiring.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/classroom"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/docs"
	"github.com/m4sh/backend/internal/httpapi"
	"github.com/m4sh/backend/internal/jobs"
	"github.com/m4sh/backend/internal/metrics"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/presence"
	"github.com/m4sh/backend/internal/users"
	"github.com/m4sh/backend/internal/ws"
	"github.com/m4sh/backend/openapi"
	"github.com/m4sh/backend/queries"
)

// App is the wired service: everything serve starts and stops.
type App struct {
	Log     *slog.Logger
	Pool    *pgxpool.Pool
	Handler http.Handler
	River   *jobs.Client
	// WS is the presence WebSocket endpoint; serve shuts it down beside the HTTP server,
	// which does not track hijacked connections.
	WS *ws.Server
}

// New wires the service from configuration. It owns the pool it opens; Close releases it.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.RequireDatabase(); err != nil {
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
	pool, err := postgres.Connect(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, err
	}
	a := &App{Log: log, Pool: pool}
	ok := false
	defer func() {
		if !ok {
			pool.Close()
		}
	}()
	migrator, err := NewMigrator(pool, log)
	if err != nil {
		return nil, err
	}
	if st, err := migrator.Status(ctx); err != nil || !st.Current() {
		log.WarnContext(ctx, "schema is not current: run `m4sh migrate up`; /readyz answers 503 until then", "pending", st.Pending, "err", err)
	}
	q := db.New(pool)
	reg := metrics.New()
	a.River, err = jobs.New(pool, jobs.Config{Log: log})
	if err != nil {
		return nil, err
	}
	doc, err := api.GetSwagger()
	if err != nil {
		return nil, err
	}
	docsHandler, err := docs.Handler(doc)
	if err != nil {
		return nil, err
	}
	schemas, err := ws.CompileSchemas(asyncapi.YAML)
	if err != nil {
		return nil, err
	}
	userSvc := users.New(q, 100_000)
	hub := presence.NewHub(presence.Options{
		Bus:         presence.NewLocalBus(),
		CursorRate:  float64(cfg.WS.CursorRatePerSec),
		CursorBurst: cfg.WS.CursorBurst,
		DropLimit:   cfg.WS.CursorRatePerSec,
	})
	classrooms := classroom.New(pool, classroom.Options{
		MaxMembers: cfg.Classroom.MaxMembers,
		// The WS server is created below; the closure reads it when a removal commits.
		OnMemberRemoved: func(_ context.Context, classroomID uuid.UUID, userID string) {
			a.WS.CloseMember(classroomID, userID)
		},
	})
	a.WS = ws.New(ws.Deps{
		Log:        log,
		Registerer: reg,
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
		},
	})
	a.Handler, err = httpapi.NewHandler(httpapi.Deps{
		Log:        log,
		Metrics:    reg,
		Verifier:   verifier,
		Users:      userSvc,
		Classrooms: classrooms,
		Presence:   hub,
		Ready: httpapi.Checks{
			"database": func(ctx context.Context) error { return pool.Ping(ctx) },
			"migrations": func(ctx context.Context) error {
				st, err := migrator.Status(ctx)
				if err != nil {
					return err
				}
				if !st.Current() {
					return fmt.Errorf("pending migrations %v (river current: %t)", st.Pending, st.RiverCurrent)
				}
				return nil
			},
		},
		Extra: map[string]http.Handler{
			"GET /metrics":       reg.Handler(),
			"GET /openapi.yaml":  staticFile("application/yaml", openapi.YAML),
			"GET /asyncapi.yaml": staticFile("application/yaml", asyncapi.YAML),
			"GET /docs":          docsHandler,
			"GET /docs/{$}":      docsHandler,
			"GET /ws/classroom/{class_id}/session/{session_id}/{$}": a.WS,
		},
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// Close releases the pool.
func (a *App) Close() { a.Pool.Close() }

func staticFile(contentType string, body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	})
}

// NewMigrator returns the migrator for the project's migrations over pool.
func NewMigrator(pool *pgxpool.Pool, log *slog.Logger) (*postgres.Migrator, error) {
	migs, err := postgres.LoadMigrations(queries.Migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return postgres.NewMigrator(pool, migs, log)
}
