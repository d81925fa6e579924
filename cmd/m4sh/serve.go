package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/m4sh/backend/internal/app"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/debugserver"
)

// serve runs until ctx is cancelled (SIGTERM/SIGINT), then shuts down gracefully: stop
// accepting, close every WebSocket with 1001 going_away, finish in-flight requests, flush
// buffered telemetry, stop River (letting running jobs finish), close the pool — all within
// SHUTDOWN_TIMEOUT.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("config: HTTP_ADDR: listening on %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.DebugAddr != "" {
		dsrv, daddr, err := debugserver.Start(cfg.DebugAddr)
		if err != nil {
			return fmt.Errorf("config: DEBUG_ADDR: %w", err)
		}
		defer dsrv.Close()
		log.InfoContext(ctx, "debug listener (runtime profiles)", "addr", daddr.String())
	}
	// Not ctx: a signal must not cancel running jobs at once (River stops hard when the
	// context given to Start ends); stopRiver gives them part of the shutdown budget first.
	if err := a.River.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("starting river: %w", err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.InfoContext(ctx, "listening", "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "m4sh: listening on http://%s\n", ln.Addr())

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Shutdown closes the listeners and waits for in-flight requests; hijacked WebSocket
	// connections are invisible to it, so they are closed beside it.
	wsDone := make(chan error, 1)
	go func() { wsDone <- a.WS.Shutdown(sctx) }()
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := <-wsDone; err != nil {
		errs = append(errs, fmt.Errorf("websocket shutdown: %w", err))
	}
	if err := a.Drain(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := stopRiver(sctx, a.River); err != nil {
		errs = append(errs, fmt.Errorf("river stop: %w", err))
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	log.Info("stopped")
	return errors.Join(errs...)
}

// riverStopper is the part of River's client a shutdown uses.
type riverStopper interface {
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// stopRiver lets running jobs finish for half of what is left of the shutdown budget, then
// cancels their contexts for the rest: a job stuck on a hung peer (a webhook receiver) then
// records its outcome — a retry, or a batch handing its undelivered events over — instead of
// staying "running" until River rescues it an hour later and runs it again.
func stopRiver(ctx context.Context, r riverStopper) error {
	soft := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		soft, cancel = context.WithTimeout(ctx, time.Until(deadline)/2)
		defer cancel()
	}
	err := r.Stop(soft)
	if err == nil || ctx.Err() != nil {
		return err
	}
	return r.StopAndCancel(ctx)
}
