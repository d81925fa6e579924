package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/telemetry/ingest"
)

// mountTelemetry serves the telemetry ingest route with ingest.Handler, in front of
// authentication, validation and the generated routes: its throttle and size checks answer
// before the body is read (internal/telemetry/ingest). A user-store outage must not fail it,
// so the authentication it runs once those checks pass is best effort.
func (s *Server) mountTelemetry(root *http.ServeMux, o ingest.Options, doc *openapi3.T) error {
	t := ingest.Transport{Doc: doc, Log: s.log,
		Authenticate: func(next http.Handler) http.Handler { return s.authenticateWith(next, false) }}
	if s.metrics != nil {
		t.Registerer = s.metrics
	}
	h, err := ingest.New(o, t)
	if err != nil {
		return err
	}
	root.Handle("POST "+ingest.Path+"{$}", h)
	root.Handle("OPTIONS "+ingest.Path+"{$}", h)
	return nil
}

// TelemetryIngest exists because the generated strict interface has a method for every
// operation of the document, and the operation stays there (clients, docs, validation). It
// never runs: mountTelemetry routes the operation's requests to ingest.Handler first. Should it
// run, the wiring is broken, which is a 500.
func (s *Server) TelemetryIngest(context.Context, api.TelemetryIngestRequestObject) (api.TelemetryIngestResponseObject, error) {
	return nil, errors.New("the telemetry ingest reached the generated handler instead of ingest.Handler")
}
