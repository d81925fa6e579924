package solo

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/postgres"
	"github.com/m4sh/backend/internal/webhook"
)

// SetEvents sets where solo.quota_exceeded goes (nil: nowhere). The publisher needs the
// River client, which is built after the Service (it runs the Service's jobs), so it is set
// during wiring, before serving.
func (s *Service) SetEvents(p *webhook.Publisher) { s.events = p }

// reportQuotaExceeded queues solo.quota_exceeded for an upload refused with err. The refusal
// changes no row, so the event is the transaction's only write; a failure to queue it is
// logged and leaves the 403 as it is.
func (s *Service) reportQuotaExceeded(ctx context.Context, up Upload, err error) {
	var e *apperr.Error
	if !s.events.Enabled(webhook.SoloQuotaExceeded) || !errors.As(err, &e) || e.Kind != apperr.QuotaExceeded {
		return
	}
	n := func(k string) int64 { v, _ := e.Extra[k].(int64); return v }
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	data := webhook.QuotaExceededData{UserID: up.UserID, SessionID: up.SessionID, Used: n("used"), Quota: n("quota"), Remaining: n("remaining")}
	if err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		return s.events.Publish(ctx, tx, webhook.Event{Type: webhook.SoloQuotaExceeded, Data: data})
	}); err != nil {
		s.log.ErrorContext(ctx, "queueing solo.quota_exceeded", "user_id", up.UserID, "err", err)
	}
}
