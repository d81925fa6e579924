package ws

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/presence"
)

// Server → client frames, encoded by hand into reusable buffers: they are on the hot path
// and their shapes are few. wire_test.go checks every one against the AsyncAPI schemas.

const (
	typeCursor   = "cursor"
	typeCursors  = "cursors"
	typePing     = "ping"
	typePong     = "pong"
	typeSnapshot = "presence.snapshot"
	typeJoin     = "presence.join"
	typeLeave    = "presence.leave"
	typeState    = "state"
)

// maxStateBytes bounds a presence state serialized (the AsyncAPI document).
const maxStateBytes = 512

var frameStateTooLarge = []byte(`{"type":"error","code":"state_too_large","message":"presence state is larger than 512 bytes","for":"state"}`)

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
	return append(b, "]}"...)
}

// appendState encodes a state message; state is a compact JSON object.
func appendState(b []byte, userID string, state []byte) []byte {
	b = append(b, `{"type":"state","user_id":`...)
	b = appendString(b, userID)
	b = append(b, `,"state":`...)
	b = append(b, state...)
	return append(b, '}')
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
