package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/m4sh/backend/internal/httpx"
)

// writeError answers err as problem+json. The kind → status mapping and the problem body live
// in httpx, shared with the telemetry ingest; this name keeps the API's many call sites short.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	httpx.WriteError(w, r, log, err)
}
