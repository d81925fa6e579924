package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/m4sh/backend/internal/app"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/webhook"
)

// webhooks runs `webhooks test`: one signed ping to WEBHOOK_URL, sent directly (not queued,
// no retry, whatever WEBHOOK_EVENTS says), printing {"id","status","latency_ms"}. A non-2xx
// answer or no answer is an error after the line is printed.
func webhooks(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "test" {
		return errors.New("webhooks: want test")
	}
	if cfg.Webhook.URL == "" {
		return errors.New("webhooks test: WEBHOOK_URL is not set")
	}
	d, err := app.NewDeliverer(cfg.Webhook, log, nil)
	if err != nil {
		return err
	}
	msg, err := webhook.NewMessage(webhook.Event{Type: webhook.Ping, Data: webhook.PingData{Message: "m4sh webhooks test"}})
	if err != nil {
		return err
	}
	res, sendErr := d.Send(ctx, msg)
	if err := json.NewEncoder(stdout).Encode(map[string]any{
		"id": msg.ID, "status": res.Status, "latency_ms": float64(res.Latency.Microseconds()) / 1000,
	}); err != nil {
		return err
	}
	if sendErr != nil {
		return fmt.Errorf("webhooks test: %w", sendErr)
	}
	return nil
}
