package telemetry_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/m4sh/backend/internal/telemetry"
)

func TestThrottleKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::"},
	}
	for _, tt := range tests {
		if got := telemetry.ThrottleKey(netip.MustParseAddr(tt.in)).String(); got != tt.want {
			t.Errorf("ThrottleKey(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestHasher(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr("192.0.2.1")
	h1 := telemetry.NewHasher([]byte("salt-one-0123456789"))
	h2 := telemetry.NewHasher([]byte("salt-two-0123456789"))
	x, y := h1.Hash(a), h1.Hash(a)
	if len(x) != telemetry.ClientHashBytes || !bytes.Equal(x, y) {
		t.Errorf("Hash = %x then %x, want one stable %d-byte hash", x, y, telemetry.ClientHashBytes)
	}
	if bytes.Equal(x, h2.Hash(a)) {
		t.Error("two salts give the same hash")
	}
	if bytes.Equal(x, h1.Hash(netip.MustParseAddr("192.0.2.2"))) {
		t.Error("two addresses give the same hash")
	}
}

func TestTruncateUserAgent(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		in   string
		want string
	}{
		{"curl/8.0", "curl/8.0"},
		{"a\x00b\tc\x7f", "abc"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{long, strings.Repeat("é", 128)},
	}
	for _, tt := range tests {
		got := telemetry.TruncateUserAgent(tt.in)
		if got != tt.want || !utf8.ValidString(got) || len(got) > telemetry.MaxUserAgentBytes {
			t.Errorf("TruncateUserAgent(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
