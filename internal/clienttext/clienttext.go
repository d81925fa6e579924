// Package clienttext holds the one rule for identifiers and the one cleaning for human text
// that clients choose (README: Hostile input and load): a user id from a token and one sent to
// `POST .../members/` pass the same check, and every title and display name is cleaned the
// same way. It imports nothing from the rest of the service.
package clienttext

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUserIDBytes is the longest user id, in bytes of UTF-8.
const MaxUserIDBytes = 128

// Errors of UserID; their text is safe to show to a client.
var (
	ErrUserIDLength  = errors.New("must be 1 to 128 bytes of UTF-8")
	ErrUserIDUTF8    = errors.New("must be valid UTF-8")
	ErrUserIDChars   = errors.New("must not contain control or format characters (Cc, Cf)")
	ErrUserIDPadding = errors.New("must not start or end with white space")
)

// UserID reports whether s is an acceptable user id: 1..128 bytes of valid UTF-8 without
// control (Cc) or format (Cf: zero-width, bidi overrides) characters and without leading or
// trailing white space. Such characters would let two ids look alike, or reorder text
// around them, wherever ids are shown.
func UserID(s string) error {
	if len(s) == 0 || len(s) > MaxUserIDBytes {
		return ErrUserIDLength
	}
	if !utf8.ValidString(s) {
		return ErrUserIDUTF8
	}
	for _, r := range s {
		if hidden(r) {
			return ErrUserIDChars
		}
	}
	if strings.TrimSpace(s) != s {
		return ErrUserIDPadding
	}
	return nil
}

// Clean returns text (a title, a display name) without control (Cc) or format (Cf)
// characters, invalid UTF-8 replaced, and trimmed of surrounding white space. Callers treat
// an empty result as missing.
func Clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, hidden) >= 0 {
		s = strings.Map(func(r rune) rune {
			if hidden(r) {
				return -1
			}
			return r
		}, s)
	}
	return strings.TrimSpace(s)
}

// Truncate cuts s to at most n runes.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func hidden(r rune) bool { return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) }
