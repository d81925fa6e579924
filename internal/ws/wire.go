package ws

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// Server → client frames, encoded by hand into reusable buffers: they are on the hot path
// and their shapes are few. wire_test.go checks every one against the AsyncAPI schemas.

const (
	typeCursor    = "cursor"
	typeCursors   = "cursors"
	typePing      = "ping"
	typePong      = "pong"
	typeSnapshot  = "presence.snapshot"
	typeJoin      = "presence.join"
	typeLeave     = "presence.leave"
	typeState     = "state"
	typeHand      = "hand"
	typeReaction  = "reaction"
	typeSpotlight = "spotlight"
	typeViewport  = "viewport"
)

// maxStateBytes bounds a presence state serialized (the AsyncAPI document).
const maxStateBytes = 512

var frameStateTooLarge = []byte(`{"type":"error","code":"state_too_large","message":"presence state is larger than 512 bytes","for":"state"}`)

// Refusals of tutoring frames the sender's role may not send.
var (
	frameHandForbidden      = []byte(`{"type":"error","code":"forbidden","message":"students raise and lower their own hand; tutors lower anyone's","for":"hand"}`)
	frameSpotlightForbidden = []byte(`{"type":"error","code":"forbidden","message":"only a tutor may turn the spotlight on or off","for":"spotlight"}`)
	frameViewportForbidden  = []byte(`{"type":"error","code":"forbidden","message":"only a tutor may send the spotlight viewport","for":"viewport"}`)
)

// Refusals of hand and spotlight changes over the user's rate.
var (
	frameHandRateLimited      = []byte(`{"type":"error","code":"rate_limited","message":"more than 5 hand or spotlight changes per second","for":"hand"}`)
	frameSpotlightRateLimited = []byte(`{"type":"error","code":"rate_limited","message":"more than 5 hand or spotlight changes per second","for":"spotlight"}`)
)

var framePong = []byte(`{"type":"pong"}`)

// appendSnapshot encodes a presence.snapshot message.
func appendSnapshot(b []byte, session uuid.UUID, users []presence.User) []byte {
	b = append(b, `{"type":"presence.snapshot","session_id":"`...)
	b = append(b, session.String()...)
	b = append(b, `","users":[`...)
	for i, u := range users {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUser(b, u)
		b = b[:len(b)-1] // reopen the user object for its cursor and state
		if u.Cursor != nil {
			b = append(b, `,"cursor":{"x":`...)
			b = appendFloat(b, u.Cursor.X)
			b = append(b, `,"y":`...)
			b = appendFloat(b, u.Cursor.Y)
			b = append(b, '}')
		}
		if u.State != "" {
			b = append(b, `,"state":`...)
			b = append(b, u.State...)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendSnapshotTutoring(b, users)
	return append(b, '}')
}

// appendState encodes a state message; state is a compact JSON object.
func appendState(b []byte, userID string, state []byte) []byte {
	b = append(b, `{"type":"state","user_id":`...)
	b = appendString(b, userID)
	b = append(b, `,"state":`...)
	b = append(b, state...)
	return append(b, '}')
}

// appendSnapshotTutoring adds to a snapshot the raised hands (in the order raised) and
// the spotlight, each when there is one.
func appendSnapshotTutoring(b []byte, users []presence.User) []byte {
	var hands []presence.User
	for _, u := range users {
		if u.Tutoring != nil && !u.Tutoring.HandAt.IsZero() {
			hands = append(hands, u)
		}
	}
	if len(hands) > 0 {
		slices.SortStableFunc(hands, func(a, b presence.User) int { return a.Tutoring.HandAt.Compare(b.Tutoring.HandAt) })
		b = append(b, `,"hands":[`...)
		for i, u := range hands {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"user_id":`...)
			b = appendString(b, u.UserID)
			b = append(b, `,"at":`...)
			b = appendTime(b, u.Tutoring.HandAt)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	for _, u := range users {
		if u.Tutoring == nil || !u.Tutoring.Spotlight {
			continue
		}
		b = append(b, `,"spotlight":{"user_id":`...)
		b = appendString(b, u.UserID)
		if rect := viewportRect(u.UserID, u.Tutoring.Viewport); rect != "" {
			b = append(b, `,"viewport":{`...)
			b = append(b, rect...)
		}
		b = append(b, '}')
		break
	}
	return b
}

// appendHand encodes a hand message.
func appendHand(b []byte, userID string, raised bool, at time.Time) []byte {
	b = append(b, `{"type":"hand","user_id":`...)
	b = appendString(b, userID)
	b = append(b, `,"raised":`...)
	b = strconv.AppendBool(b, raised)
	b = append(b, `,"at":`...)
	b = appendTime(b, at)
	return append(b, '}')
}

// appendReaction encodes a reaction message; emoji is one the schema admits.
func appendReaction(b []byte, userID, emoji string) []byte {
	b = append(b, `{"type":"reaction","user_id":`...)
	b = appendString(b, userID)
	b = append(b, `,"emoji":`...)
	b = appendString(b, emoji)
	return append(b, '}')
}

// appendSpotlight encodes a spotlight message.
func appendSpotlight(b []byte, userID string, on bool) []byte {
	b = append(b, `{"type":"spotlight","user_id":`...)
	b = appendString(b, userID)
	b = append(b, `,"on":`...)
	b = strconv.AppendBool(b, on)
	return append(b, '}')
}

// viewportFrame is a viewport message, made once by the sender and shared by every
// receiver (and kept as the spotlight's viewport for snapshots).
func viewportFrame(userID string, x, y, w, h float64) []byte {
	b := make([]byte, 0, 80+len(userID))
	b = append(b, `{"type":"viewport","user_id":`...)
	b = appendString(b, userID)
	for i, v := range [...]float64{x, y, w, h} {
		b = append(b, `,"`...)
		b = append(b, "xywh"[i], '"', ':')
		b = appendFloat(b, v)
	}
	return append(b, '}')
}

// viewportRect is the `"x":…,"y":…,"w":…,"h":…}` end of a viewportFrame of userID.
func viewportRect(userID, frame string) string {
	head := len(`{"type":"viewport","user_id":`) + len(appendString(nil, userID)) + 1
	if len(frame) <= head {
		return ""
	}
	return frame[head:]
}

// appendTime encodes a time as an RFC 3339 string in UTC with milliseconds.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, '"')
}

func appendUser(b []byte, u presence.User) []byte {
	b = append(b, `{"user_id":`...)
	b = appendString(b, u.UserID)
	b = append(b, `,"name":`...)
	b = appendString(b, u.Name)
	b = append(b, `,"role":`...)
	b = appendString(b, u.Role)
	return append(b, '}')
}

// appendJoin encodes a presence.join message.
func appendJoin(b []byte, u presence.User) []byte {
	b = append(b, `{"type":"presence.join","user":`...)
	b = appendUser(b, u)
	return append(b, '}')
}

// appendLeave encodes a presence.leave message.
func appendLeave(b []byte, userID string) []byte {
	b = append(b, `{"type":"presence.leave","user_id":`...)
	b = appendString(b, userID)
	return append(b, '}')
}

// cursorEntry is the shared middle of every cursor frame of one update:
// `"user_id":"…","x":…,"y":…`. Senders make it once; receivers wrap it.
func cursorEntry(userID string, x, y float64) []byte {
	b := make([]byte, 0, 32+len(userID))
	b = append(b, `"user_id":`...)
	b = appendString(b, userID)
	b = append(b, `,"x":`...)
	b = appendFloat(b, x)
	b = append(b, `,"y":`...)
	b = appendFloat(b, y)
	return b
}

// appendCursors encodes one cursor message, or a cursors batch when there are several.
func appendCursors(b []byte, entries [][]byte) []byte {
	if len(entries) == 1 {
		b = append(b, `{"type":"cursor",`...)
		b = append(b, entries[0]...)
		return append(b, '}')
	}
	b = append(b, `{"type":"cursors","cursors":[`...)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = append(b, e...)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendFloat formats a finite float the way encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD, U+2028/2029 escaped for JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
