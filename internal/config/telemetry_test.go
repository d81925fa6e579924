package config_test

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/config"
)

func TestLoadTelemetry(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"AUTH_JWT_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	tc := c.Telemetry
	if tc.MaxBytes != 32768 || tc.RatePerMin != 300 || tc.RetentionDays != 30 || len(tc.TrustedProxies) != 0 ||
		tc.BufferEvents != 20_000 || tc.FlushEvents != 5_000 || tc.FlushInterval != time.Second {
		t.Errorf("telemetry defaults = %+v", tc)
	}
	// Without TELEMETRY_HASH_SALT the salt is derived from the JWT secret: stable, not the secret.
	if len(tc.HashSalt) != 32 || bytes.Contains(tc.HashSalt, []byte(secret)) {
		t.Errorf("derived salt = %x", tc.HashSalt)
	}
	again, _ := config.Load(env(map[string]string{"AUTH_JWT_SECRET": secret}))
	if !bytes.Equal(again.Telemetry.HashSalt, tc.HashSalt) {
		t.Error("derived salt differs between loads")
	}
	if err := c.RequireTelemetrySalt(); err != nil {
		t.Errorf("RequireTelemetrySalt() = %v", err)
	}

	c, err = config.Load(env(map[string]string{
		"AUTH_JWT_SECRET":     secret,
		"TRUSTED_PROXIES":     "10.0.0.0/8, 192.0.2.7 2001:db8::/32,::ffff:192.0.2.9",
		"TELEMETRY_HASH_SALT": "an-operator-chosen-salt",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("192.0.2.9/32")}
	if !slices.Equal(c.Telemetry.TrustedProxies, want) {
		t.Errorf("TrustedProxies = %v, want %v", c.Telemetry.TrustedProxies, want)
	}
	if string(c.Telemetry.HashSalt) != "an-operator-chosen-salt" {
		t.Errorf("HashSalt = %q", c.Telemetry.HashSalt)
	}

	// A public-key-only deployment must choose a salt before serving.
	c, err = config.Load(env(map[string]string{"AUTH_JWT_PUBLIC_KEY_FILE": "/k.pem"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RequireTelemetrySalt(); err == nil || !strings.Contains(err.Error(), "TELEMETRY_HASH_SALT") {
		t.Errorf("RequireTelemetrySalt() = %v, want an error naming TELEMETRY_HASH_SALT", err)
	}
}

func TestLoadRejectsBadTelemetryValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key, value string
	}{
		{"proxy not a CIDR", "TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"},
		{"short salt", "TELEMETRY_HASH_SALT", "short"},
		{"zero rate", "TELEMETRY_RATE_PER_MIN", "0"},
		{"tiny limit", "TELEMETRY_MAX_BYTES", "10"},
		{"zero retention", "TELEMETRY_RETENTION_DAYS", "0"},
		{"flush interval too short", "TELEMETRY_FLUSH_INTERVAL", "1ms"},
		{"buffer not a number", "TELEMETRY_BUFFER_EVENTS", "lots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(map[string]string{"AUTH_JWT_SECRET": secret, tt.key: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("Load(%s=%q) = %v, want an error naming %s", tt.key, tt.value, err, tt.key)
			}
		})
	}
}
