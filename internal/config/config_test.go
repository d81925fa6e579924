package config_test

import (
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/config"
)

const secret = "config-test-secret-0123456789abcdefghij"

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"AUTH_JWT_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.LogLevel != slog.LevelInfo || c.Auth.UserClaim != "sub" ||
		c.Auth.Leeway != 30*time.Second || c.ShutdownTimeout != 20*time.Second || c.DBMaxConns != 20 {
		t.Errorf("defaults = %+v", c)
	}
	if _, err := config.Load(env(nil)); err != nil {
		t.Errorf("Load without keys = %v, want nil (only serve and token need them)", err)
	}
	if c, _ := config.Load(env(nil)); c.RequireAuth() == nil {
		t.Error("RequireAuth() without keys = nil, want an error naming AUTH_JWT_SECRET")
	}
	want := config.WS{MaxPayloadBytes: 2048, CursorRatePerSec: 20, CursorBurst: 20, PingInterval: 25 * time.Second,
		PongTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, SendQueue: 256, MaxWritePause: 25 * time.Millisecond,
		MaxConnsPerUser: 8, MaxConnsPerSession: 1000, LeaveGrace: 5 * time.Second}
	if !reflect.DeepEqual(c.WS, want) {
		t.Errorf("WS defaults = %+v, want %+v", c.WS, want)
	}
	if want := (config.HTTP{BodyTimeout: 30 * time.Second, WriteRatePerMin: 120}); c.HTTP != want {
		t.Errorf("HTTP defaults = %+v, want %+v", c.HTTP, want)
	}
	if wantC := (config.Cluster{PubSub: "memory", HeartbeatInterval: 10 * time.Second, PurgeAfter: 30 * time.Second}); c.Cluster != wantC {
		t.Errorf("Cluster defaults = %+v, want %+v", c.Cluster, wantC)
	}
	if err := c.RequireDatabase(); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("RequireDatabase() = %v, want an error naming DATABASE_URL", err)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		vars    map[string]string
		wantVar string
	}{
		{"short secret", map[string]string{"AUTH_JWT_SECRET": "short"}, "AUTH_JWT_SECRET"},
		{"bad level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"unknown pubsub", map[string]string{"PUBSUB": "redis"}, "PUBSUB"},
		{"nats without url", map[string]string{"PUBSUB": "nats"}, "NATS_URL"},
		{"purge under two heartbeats", map[string]string{"CLUSTER_HEARTBEAT_INTERVAL": "10s", "CLUSTER_PURGE_AFTER": "15s"}, "CLUSTER_PURGE_AFTER"},
		{"bad format", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{"bad duration", map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, "SHUTDOWN_TIMEOUT"},
		{"negative duration", map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, "SHUTDOWN_TIMEOUT"},
		{"conns not a number", map[string]string{"DB_MAX_CONNS": "many"}, "DB_MAX_CONNS"},
		{"conns zero", map[string]string{"DB_MAX_CONNS": "0"}, "DB_MAX_CONNS"},
		{"mysql url", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"empty claim", map[string]string{"AUTH_JWT_USER_CLAIM": " "}, "AUTH_JWT_USER_CLAIM"},
		{"huge leeway", map[string]string{"AUTH_JWT_LEEWAY": "1h"}, "AUTH_JWT_LEEWAY"},
		{"ws payload too small", map[string]string{"WS_MAX_PAYLOAD_BYTES": "10"}, "WS_MAX_PAYLOAD_BYTES"},
		{"ws rate zero", map[string]string{"WS_CURSOR_RATE_PER_SEC": "0"}, "WS_CURSOR_RATE_PER_SEC"},
		{"ws burst huge", map[string]string{"WS_CURSOR_BURST": "5000"}, "WS_CURSOR_BURST"},
		{"ws bad origin pattern", map[string]string{"WS_ALLOWED_ORIGINS": "ok.example, [bad"}, "WS_ALLOWED_ORIGINS"},
		{"ws conns per user zero", map[string]string{"WS_MAX_CONNS_PER_USER": "0"}, "WS_MAX_CONNS_PER_USER"},
		{"ws conns per session not a number", map[string]string{"WS_MAX_CONNS_PER_SESSION": "many"}, "WS_MAX_CONNS_PER_SESSION"},
		{"ws ping too fast", map[string]string{"WS_PING_INTERVAL": "1ms"}, "WS_PING_INTERVAL"},
		{"ws pong not a duration", map[string]string{"WS_PONG_TIMEOUT": "soon"}, "WS_PONG_TIMEOUT"},
		{"ws write timeout zero", map[string]string{"WS_WRITE_TIMEOUT": "0s"}, "WS_WRITE_TIMEOUT"},
		{"body timeout not a duration", map[string]string{"HTTP_BODY_TIMEOUT": "soon"}, "HTTP_BODY_TIMEOUT"},
		{"body timeout zero", map[string]string{"HTTP_BODY_TIMEOUT": "0s"}, "HTTP_BODY_TIMEOUT"},
		{"write rate zero", map[string]string{"API_WRITE_RATE_PER_MIN": "0"}, "API_WRITE_RATE_PER_MIN"},
		{"ws queue tiny", map[string]string{"WS_SEND_QUEUE": "1"}, "WS_SEND_QUEUE"},
		{"dev tokens with a real secret", map[string]string{"DEV_TOKENS": "1"}, "DEV_TOKENS"},
		{"dev tokens with a public key", map[string]string{"DEV_TOKENS": "true", "AUTH_JWT_SECRET": config.DevSecret, "AUTH_JWT_PUBLIC_KEY_FILE": "/k.pem"}, "DEV_TOKENS"},
		{"dev tokens not a boolean", map[string]string{"DEV_TOKENS": "maybe", "AUTH_JWT_SECRET": config.DevSecret}, "DEV_TOKENS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"AUTH_JWT_SECRET": secret}
			for k, v := range tt.vars {
				vars[k] = v
			}
			if _, ok := tt.vars["AUTH_JWT_SECRET"]; !ok && tt.wantVar == "AUTH_JWT_SECRET" {
				delete(vars, "AUTH_JWT_SECRET")
			}
			_, err := config.Load(env(vars))
			if err == nil {
				t.Fatalf("Load(%v) succeeded, want an error naming %s", tt.vars, tt.wantVar)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("Load(%v) error %q does not name %s", tt.vars, err, tt.wantVar)
			}
		})
	}
}

// TestDevTokens: off by default; on only beside the dev secret, which is the Makefile's
// DEV_SECRET (the one `make run` passes), so that `make run` can turn it on.
func TestDevTokens(t *testing.T) {
	t.Parallel()
	if c, err := config.Load(env(map[string]string{"AUTH_JWT_SECRET": config.DevSecret})); err != nil || c.Auth.DevTokens {
		t.Errorf("Load(dev secret) = DevTokens %t, %v; want off by default", c.Auth.DevTokens, err)
	}
	c, err := config.Load(env(map[string]string{"AUTH_JWT_SECRET": config.DevSecret, "DEV_TOKENS": "1"}))
	if err != nil || !c.Auth.DevTokens {
		t.Errorf("Load(dev secret, DEV_TOKENS=1) = DevTokens %t, %v; want on", c.Auth.DevTokens, err)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "\nDEV_SECRET := "+config.DevSecret+"\n") {
		t.Errorf("the Makefile's DEV_SECRET is not config.DevSecret %q: make run could not turn DEV_TOKENS on", config.DevSecret)
	}
}
