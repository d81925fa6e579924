// Package telemetry is the storage side of the public telemetry ingest (README: Telemetry): the
// event type, the bounded buffer and COPY writer that store events best-effort without ever
// blocking a request, the per-client throttle, the salted client hash, and daily partition
// maintenance. It knows nothing of HTTP; its sub-package ingest is the HTTP side.
package telemetry

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one telemetry event as stored. Optional text fields are "" when absent and stored
// as NULL; Props is a JSON object or nil.
type Event struct {
	ReceivedAt time.Time
	Name       string
	TS         time.Time
	Level      string
	UserID     string
	SessionID  string
	Props      []byte
	UserAgent  string
	ClientHash []byte
}

// eventOverhead approximates the memory of an Event besides its variable-length fields.
const eventOverhead = 200

// size approximates the memory an event holds, for the writer's byte budget. Fields shared by
// the events of one request (user agent, user, hash) are counted each time: an upper bound.
func (e *Event) size() int {
	return eventOverhead + len(e.Name) + len(e.Level) + len(e.UserID) + len(e.SessionID) +
		len(e.Props) + len(e.UserAgent) + len(e.ClientHash)
}

// MaxUserAgentBytes is how much of a User-Agent header is stored.
const MaxUserAgentBytes = 256

// TruncateUserAgent returns ua as valid UTF-8 without control characters, cut at a character
// boundary to at most MaxUserAgentBytes bytes.
func TruncateUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	ua = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, ua)
	if len(ua) <= MaxUserAgentBytes {
		return ua
	}
	cut := MaxUserAgentBytes
	for cut > 0 && !utf8.RuneStart(ua[cut]) {
		cut--
	}
	return ua[:cut]
}
