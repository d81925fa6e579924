package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/postgres"
)

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("migrate: want up, down or status")
	}
	fs := flag.NewFlagSet("migrate "+args[0], flag.ContinueOnError)
	steps := fs.Int("steps", 1, "with down: how many migrations to revert")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	pool, err := postgres.Connect(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := postgres.NewSchemaMigrator(pool, log)
	if err != nil {
		return err
	}
	switch args[0] {
	case "up":
		applied, err := m.Up(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "migrated up: %d applied, now at version %d\n", len(applied), m.Latest())
	case "down":
		if *steps < 1 {
			return errors.New("migrate down: -steps must be at least 1")
		}
		reverted, err := m.Down(ctx, *steps)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "migrated down: reverted %v\n", reverted)
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied: %v\npending: %v\nriver schema current: %t\n", st.Applied, st.Pending, st.RiverCurrent)
	default:
		return fmt.Errorf("migrate: unknown subcommand %q (want up, down or status)", args[0])
	}
	return nil
}
