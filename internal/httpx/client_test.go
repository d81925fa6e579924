package httpx_test

import (
	"net/netip"
	"testing"

	"github.com/m4sh/backend/internal/httpx"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	proxies := httpx.Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	tests := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5000", nil, "192.0.2.1"},
		{"192.0.2.1:5000", []string{"198.51.100.7"}, "192.0.2.1"},             // untrusted peer: header ignored
		{"10.0.0.1:5000", nil, "10.0.0.1"},                                    // trusted peer without header
		{"10.0.0.1:5000", []string{"198.51.100.7"}, "198.51.100.7"},           // one proxy
		{"10.0.0.1:5000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},  // forged left part ignored
		{"10.0.0.1:5000", []string{"198.51.100.7, 10.9.9.9"}, "198.51.100.7"}, // two proxies
		{"10.0.0.1:5000", []string{"198.51.100.7", "10.9.9.9"}, "198.51.100.7"},
		{"10.0.0.1:5000", []string{"10.2.2.2, 10.9.9.9"}, "10.2.2.2"}, // all trusted: leftmost
		{"10.0.0.1:5000", []string{"garbage, 10.9.9.9"}, "10.9.9.9"},  // unparsable: stop at the reporter
		{"10.0.0.1:5000", []string{"198.51.100.7:4711"}, "198.51.100.7"},
		{"10.0.0.1:5000", []string{"[2001:db9::1]:443"}, "2001:db9::1"},
		{"[2001:db8::5]:443", []string{"2001:db9::1"}, "2001:db9::1"},
		{"[::ffff:10.0.0.1]:443", []string{"198.51.100.7"}, "198.51.100.7"}, // IPv4-mapped peer
		{"not-an-address", []string{"198.51.100.7"}, "invalid IP"},
	}
	for _, tt := range tests {
		if got := proxies.ClientAddr(tt.remote, tt.xff).String(); got != tt.want {
			t.Errorf("ClientAddr(%q, %q) = %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
}
