package tracing

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// PGX is a pgx tracer (QueryTracer, BatchTracer, CopyFromTracer) starting one client span
// per statement, named after the sqlc query ("db GetUser") or the statement's first
// keyword. It is hand-written rather than a contrib module: the interfaces are three
// methods each, and the span names come from sqlc's "-- name:" comments, which keeps the
// names bounded and the statement text (which may hold literals) out of the spans.
type PGX struct{ tracer trace.Tracer }

// NewPGX returns the tracer, or nil when p is off: pgx then skips tracing entirely.
func NewPGX(p *Provider) pgx.QueryTracer {
	if !p.Enabled() {
		return nil
	}
	return &PGX{tracer: p.Tracer()}
}

var _ interface {
	pgx.QueryTracer
	pgx.BatchTracer
	pgx.CopyFromTracer
} = (*PGX)(nil)

// SpanName is the span name of sql: "db " and the sqlc query name, or the first keyword.
func SpanName(sql string) string {
	s := strings.TrimSpace(sql)
	if rest, ok := strings.CutPrefix(s, "-- name: "); ok {
		if i := strings.IndexAny(rest, " \n"); i > 0 {
			return "db " + rest[:i]
		}
	}
	for strings.HasPrefix(s, "--") { // skip other leading comments
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return "db"
		}
		s = strings.TrimSpace(s[i+1:])
	}
	if i := strings.IndexAny(s, " \n\t("); i > 0 {
		s = s[:i]
	}
	if s == "" || len(s) > 16 {
		return "db"
	}
	return "db " + strings.ToUpper(s)
}

func (t *PGX) start(ctx context.Context, name string) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		// Statements outside a trace (pool upkeep, River's polling) would each start a
		// trace of their own; those of an unsampled request would not be exported.
		return ctx
	}
	ctx, _ = t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "postgresql")))
	return ctx
}

func end(ctx context.Context, err error) {
	span := trace.SpanFromContext(ctx)
	if err != nil && err != pgx.ErrNoRows {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceQueryStart starts the statement's span.
func (t *PGX) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, SpanName(d.SQL))
}

// TraceQueryEnd ends it.
func (t *PGX) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	end(ctx, d.Err)
}

// TraceBatchStart starts a batch's span.
func (t *PGX) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return t.start(ctx, "db batch")
}

// TraceBatchQuery is not a span of its own: a batch is one round trip.
func (t *PGX) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd ends the batch's span.
func (t *PGX) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	end(ctx, d.Err)
}

// TraceCopyFromStart starts a COPY's span.
func (t *PGX) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx, "db COPY "+d.TableName.Sanitize())
}

// TraceCopyFromEnd ends it.
func (t *PGX) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromEndData) {
	end(ctx, d.Err)
}
