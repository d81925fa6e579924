package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/m4sh/backend/internal/app"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/postgres"
)

// quota manages per-user snapshot storage quotas: `quota set -user U -bytes N` prints the
// user's storage as JSON {"user_id","used","quota","remaining"}.
func quota(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "set" {
		return errors.New("quota: want set -user U -bytes N")
	}
	fs := flag.NewFlagSet("quota set", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id (required)")
	bytes := fs.Int64("bytes", -1, "quota in bytes (required; may be below current usage)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("quota set: -user is required")
	}
	if *bytes < 0 {
		return errors.New("quota set: -bytes is required and must not be negative")
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	pool, err := postgres.Connect(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	blobs, err := app.NewBlobStore(ctx, cfg.Solo)
	if err != nil {
		return err
	}
	svc := app.NewSolo(pool, blobs, cfg.Solo, log, nil)
	st, err := svc.QuotaSet(ctx, *user, *bytes)
	if err != nil {
		return fmt.Errorf("quota set: %w", err)
	}
	return json.NewEncoder(stdout).Encode(map[string]any{
		"user_id": *user, "used": st.Used, "quota": st.Quota, "remaining": st.Remaining(),
	})
}
