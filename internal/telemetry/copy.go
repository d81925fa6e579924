package telemetry

import (
	"encoding/binary"
	"time"
)

// Binary COPY encoding of telemetry_events rows (PostgreSQL's COPY … FORMAT binary). pgx's
// CopyFrom encodes every value through its type map, planning each encode anew; the
// writer's rows have one fixed shape, so encoding them by hand is a fraction of the cost
// (BENCHMARKS.md, Telemetry).

// copyColumns are the columns appendCopyRow encodes, in order.
const copyColumns = "received_at, name, ts, level, user_id, session_id, props, user_agent, client_hash"

// copyHeader starts a binary COPY stream: the signature, no flags, no header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00")

// copyTrailer ends it.
var copyTrailer = []byte{0xff, 0xff}

// pgEpochMicros is timestamptz's zero (2000-01-01 UTC) in Unix microseconds.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// jsonbVersion prefixes jsonb's binary form, which is otherwise the JSON text.
const jsonbVersion = 1

// appendCopyRow appends e as one tuple of copyColumns.
func appendCopyRow(b []byte, e *Event) []byte {
	b = binary.BigEndian.AppendUint16(b, 9)
	b = appendTimestamptz(b, e.ReceivedAt)
	b = appendField(b, e.Name)
	b = appendTimestamptz(b, e.TS)
	b = appendOptional(b, e.Level)
	b = appendOptional(b, e.UserID)
	b = appendOptional(b, e.SessionID)
	if e.Props == nil {
		b = appendNull(b)
	} else {
		b = binary.BigEndian.AppendUint32(b, uint32(1+len(e.Props)))
		b = append(b, jsonbVersion)
		b = append(b, e.Props...)
	}
	b = appendField(b, e.UserAgent)
	return appendField(b, e.ClientHash)
}

// appendTimestamptz encodes t as microseconds since 2000-01-01 UTC (truncated, as pgx does).
func appendTimestamptz(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixMicro()-pgEpochMicros))
}

// appendField encodes a text or bytea value.
func appendField[T string | []byte](b []byte, v T) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// appendOptional encodes an optional text field: "" is NULL.
func appendOptional(b []byte, v string) []byte {
	if v == "" {
		return appendNull(b)
	}
	return appendField(b, v)
}

func appendNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, 0xffffffff) }
