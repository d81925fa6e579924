package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/postgres"
)

func TestTranslateCodes(t *testing.T) {
	for code, want := range map[string]struct {
		kind  apperr.Kind
		after time.Duration
	}{
		"40001": {apperr.Unavailable, postgres.RetryAfterBusy},
		"40P01": {apperr.Unavailable, postgres.RetryAfterBusy},
		"55P03": {apperr.Unavailable, postgres.RetryAfterBusy},
		"57P01": {apperr.Unavailable, postgres.RetryAfterUnavailable},
		"08006": {apperr.Unavailable, postgres.RetryAfterUnavailable},
		"22021": {apperr.Invalid, 0},
	} {
		err := postgres.Translate(fmt.Errorf("doing it: %w", &pgconn.PgError{Code: code}))
		e, ok := apperr.As(err)
		if !ok || e.Kind != want.kind || e.RetryAfter != want.after {
			t.Errorf("%s → %v, want kind %v retry after %v", code, err, want.kind, want.after)
		}
	}
	// Anything else is the service's own fault and keeps no kind (a 500, logged).
	if _, ok := apperr.As(postgres.Translate(&pgconn.PgError{Code: "42P01"})); ok {
		t.Error("42P01 was given a kind")
	}
}
