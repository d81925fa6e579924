// Package httpx holds the HTTP transport helpers that more than one handler tree needs — the
// API (httpapi) and the telemetry ingest (telemetry/ingest): the per-request record in the
// context (request id, route template, user), problem+json answers with the one mapping of
// error kinds to statuses, field errors from kin-openapi, and client addresses behind trusted
// proxies. It imports no handler package, so that none of them imports another.
package httpx

import "context"

// Info is per-request state that inner layers fill in and outer layers read after the handler
// returns (the route template for metrics, the user for the access log). A pointer in the
// context survives the r.WithContext copies each layer makes.
type Info struct {
	ID      string // request id, also sent as X-Request-Id
	Route   string // route template, the metrics label
	UserID  string // authenticated user, for the access log
	AuthErr error  // a bearer token was sent but refused
	// Body is the request's body under its deadline (GuardBody); nil without a body.
	Body *BodyGuard
}

type infoKey struct{}

// WithInfo returns ctx carrying ri.
func WithInfo(ctx context.Context, ri *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, ri)
}

// InfoFrom returns the request's Info, or a throwaway one outside a request.
func InfoFrom(ctx context.Context) *Info {
	if ri, ok := ctx.Value(infoKey{}).(*Info); ok {
		return ri
	}
	return &Info{}
}

// RequestID returns the request's id, or "".
func RequestID(ctx context.Context) string { return InfoFrom(ctx).ID }
