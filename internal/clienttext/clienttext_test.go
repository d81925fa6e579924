package clienttext_test

import (
	"strings"
	"testing"

	"github.com/m4sh/backend/internal/clienttext"
)

func TestUserID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want error
	}{
		{"alice", nil},
		{"42", nil},
		{"élève", nil},
		{"a b", nil},
		{strings.Repeat("x", 128), nil},
		{strings.Repeat("é", 64), nil}, // 128 bytes
		{"", clienttext.ErrUserIDLength},
		{strings.Repeat("x", 129), clienttext.ErrUserIDLength},
		{strings.Repeat("é", 64) + "x", clienttext.ErrUserIDLength},
		{"a\x00b", clienttext.ErrUserIDChars},
		{"a\nb", clienttext.ErrUserIDChars},
		{"a\u007fb", clienttext.ErrUserIDChars},
		{"a\u200bb", clienttext.ErrUserIDChars},       // zero-width space
		{"admin\u202egnp", clienttext.ErrUserIDChars}, // right-to-left override
		{"\ufeffbob", clienttext.ErrUserIDChars},      // byte order mark
		{"a\xffb", clienttext.ErrUserIDUTF8},
		{" bob", clienttext.ErrUserIDPadding},
		{"bob ", clienttext.ErrUserIDPadding},
		{"bob\u00a0", clienttext.ErrUserIDPadding},
		{"bob\u3000", clienttext.ErrUserIDPadding},
	}
	for _, tt := range tests {
		if got := clienttext.UserID(tt.in); got != tt.want {
			t.Errorf("UserID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Physics", "Physics"},
		{"  Physics 101 ", "Physics 101"},
		{"Phy\u200bsics", "Physics"},
		{"\u202eevil\u202c", "evil"},
		{"a\tb\nc", "abc"},
		{"\u200b", ""},
		{" \u200b\u00a0", ""},
		{"bad\xffbyte", "bad\ufffdbyte"},
		{"👍🏽", "👍🏽"},
	}
	for _, tt := range tests {
		if got := clienttext.Clean(tt.in); got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	if got := clienttext.Truncate("ééé", 2); got != "éé" {
		t.Errorf("Truncate(ééé, 2) = %q, want éé", got)
	}
	if got := clienttext.Truncate("abc", 5); got != "abc" {
		t.Errorf("Truncate(abc, 5) = %q, want abc", got)
	}
}

// FuzzUserID: an accepted user id is already clean (Clean leaves it as it is) and within
// its byte limit; Clean never returns control or format characters or edge spaces.
func FuzzUserID(f *testing.F) {
	for _, s := range []string{"alice", " bob", "a\u200bb", "\u202e", "a\x00", "é", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if clienttext.UserID(s) == nil {
			if got := clienttext.Clean(s); got != s {
				t.Errorf("UserID accepted %q but Clean changes it to %q", s, got)
			}
		}
		c := clienttext.Clean(s)
		if c != "" && clienttext.UserID(c) != nil && len(c) <= clienttext.MaxUserIDBytes {
			t.Errorf("Clean(%q) = %q, which the user-id rule refuses: %v", s, c, clienttext.UserID(c))
		}
	})
}
