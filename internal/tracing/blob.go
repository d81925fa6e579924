package tracing

import (
	"context"
	"io"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/m4sh/backend/internal/blob"
)

// tracedBlobs adds a span around the writes of a blob store (Put, Delete); reads and
// listings pass through.
type tracedBlobs struct {
	blob.Store
	tracer trace.Tracer
}

// Blobs returns s with spans "blob put" and "blob delete", or s itself when p is off.
func Blobs(s blob.Store, p *Provider) blob.Store {
	if !p.Enabled() {
		return s
	}
	return tracedBlobs{Store: s, tracer: p.Tracer()}
}

func (t tracedBlobs) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	ctx, span := t.tracer.Start(ctx, "blob put", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.Int64("blob.size", size)))
	defer span.End()
	return record(span, t.Store.Put(ctx, key, r, size, contentType))
}

func (t tracedBlobs) Delete(ctx context.Context, key string) error {
	ctx, span := t.tracer.Start(ctx, "blob delete", trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	return record(span, t.Store.Delete(ctx, key))
}

func record(span trace.Span, err error) error {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
