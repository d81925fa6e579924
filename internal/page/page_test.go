package page_test

import (
	"encoding/base64"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/page"
)

func forge(micros int64) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(micros))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := page.Cursor{Time: time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC), ID: uuid.New()}
	got, err := page.Decode(page.Encode(c))
	if err != nil || !got.Time.Equal(c.Time) || got.ID != c.ID {
		t.Fatalf("Decode(Encode(%v)) = %v, %v", c, got, err)
	}
}

func TestParseRefusesForgedCursors(t *testing.T) {
	t.Parallel()
	valid := page.Encode(page.Cursor{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	tests := []struct {
		name   string
		cursor string
	}{
		{"time before 1970", forge(-1)},
		{"most negative time", forge(-1 << 63)},
		{"time in year 9999", forge(time.Date(9999, 6, 1, 0, 0, 0, 0, time.UTC).UnixMicro())},
		{"largest time", forge(1<<63 - 1)},
		{"short", valid[:20]},
		{"long", valid + "AA"},
		{"not base64", "!!!!"},
	}
	for _, tt := range tests {
		c := tt.cursor
		if _, err := page.Parse(nil, &c); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("Parse(cursor %s %q) = %v, want a validation error", tt.name, c, err)
		}
	}
	if r, err := page.Parse(nil, &valid); err != nil || r.After == nil {
		t.Errorf("Parse(valid cursor) = %+v, %v", r, err)
	}
}

// FuzzDecode: whatever a client sends as a cursor, Decode either refuses it or returns a
// cursor in range whose encoding is exactly what was sent (one encoding per cursor).
func FuzzDecode(f *testing.F) {
	f.Add(page.Encode(page.Cursor{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ID: uuid.Max}))
	f.Add(forge(-1))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := page.Decode(s)
		if err != nil {
			return
		}
		if got := page.Encode(c); got != s {
			t.Errorf("Decode(%q) = %v, which encodes as %q", s, c, got)
		}
		if c.Time.Year() < 1970 || c.Time.Year() > 9998 {
			t.Errorf("Decode(%q) time %v out of range", s, c.Time)
		}
	})
}
