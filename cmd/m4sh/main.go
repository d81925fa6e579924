// Command m4sh is the M4SH backend: `serve` runs the HTTP/WebSocket service and River
// workers; `migrate`, `token`, `gc` and `quota` are operator commands. main only wires the
// process to run, so that tests can drive every command in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "m4sh:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: m4sh <command> [arguments]

commands:
  serve                              run the service (HTTP, WebSocket, River workers)
  migrate up|down [-steps N]|status  apply, revert or show schema migrations
  gc snapshots [-keep-last N] [-session ID]  run snapshot retention now, print its JSON summary
  gc reconcile                       recompute every user's used_bytes from the rows
  token -user U [-name N] [-ttl 1h]  mint a dev access token (HS256, AUTH_JWT_SECRET); negative -ttl: expired
  quota set -user U -bytes N         set a user's snapshot storage quota (may be below usage)
  healthcheck [-url URL]             exit 0 when this node's /healthz answers 200 (container probes)
  version, --version                 print the API version and the commit built from
  webhooks test                      send a signed ping to WEBHOOK_URL, print status and latency

Configuration comes from environment variables; see README.md.
`

// run executes one command. stdout carries the command's output (a token, a JSON summary);
// logs go to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	if args[0] == "version" || args[0] == "--version" {
		return version(stdout)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg)
	switch args[0] {
	case "serve":
		return serve(ctx, cfg, log, stdout)
	case "migrate":
		return migrate(ctx, cfg, log, args[1:], stdout)
	case "gc":
		return gc(ctx, cfg, log, args[1:], stdout)
	case "token":
		return token(cfg, args[1:], stdout, stderr)
	case "quota":
		return quota(ctx, cfg, log, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, cfg.HTTPAddr, args[1:], stderr)
	case "webhooks":
		return webhooks(ctx, cfg, log, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(tracing.NewLogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(tracing.NewLogHandler(slog.NewJSONHandler(w, opts)))
}
