// Package config reads the service's configuration from environment variables, applies the
// documented defaults and validates it, so that a bad value stops start-up with a message
// naming the variable. Only cmd/ calls it; everything else receives plain values.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of one process. The README's configuration table lists
// every variable with its default; keep them in sync.
type Config struct {
	HTTPAddr        string        // HTTP_ADDR
	DatabaseURL     string        // DATABASE_URL
	DBMaxConns      int32         // DB_MAX_CONNS
	LogLevel        slog.Level    // LOG_LEVEL
	LogFormat       string        // LOG_FORMAT: json | text
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT

	Auth      Auth
	Classroom Classroom
	WS        WS
}

// WS configures the classroom presence WebSocket (CONTRACT §6).
type WS struct {
	MaxPayloadBytes  int           // WS_MAX_PAYLOAD_BYTES: larger inbound frames close with 4400
	CursorRatePerSec int           // WS_CURSOR_RATE_PER_SEC: token bucket rate per user and session
	CursorBurst      int           // WS_CURSOR_BURST: token bucket size
	AllowedOrigins   []string      // WS_ALLOWED_ORIGINS: Origin host patterns besides the request's own host
	PingInterval     time.Duration // WS_PING_INTERVAL
	PongTimeout      time.Duration // WS_PONG_TIMEOUT
	WriteTimeout     time.Duration // WS_WRITE_TIMEOUT
	SendQueue        int           // WS_SEND_QUEUE: presence frames queued per connection before 1013
}

// Classroom configures the classrooms feature.
type Classroom struct {
	MaxMembers int // CLASSROOM_MAX_MEMBERS
}

// Auth configures bearer-token verification (CONTRACT §1).
type Auth struct {
	Secret        []byte        // AUTH_JWT_SECRET (HS256)
	PublicKeyFile string        // AUTH_JWT_PUBLIC_KEY_FILE (RS256/ES256/EdDSA, PEM)
	Issuer        string        // AUTH_JWT_ISSUER
	Audience      string        // AUTH_JWT_AUDIENCE
	UserClaim     string        // AUTH_JWT_USER_CLAIM
	Leeway        time.Duration // AUTH_JWT_LEEWAY
}

// MinSecretBytes is the shortest HS256 secret accepted: shorter ones are guessable offline.
const MinSecretBytes = 32

// Load reads the configuration through getenv. It collects every problem before returning so
// that an operator fixes them all in one go.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		HTTPAddr:        p.str("HTTP_ADDR", ":8080"),
		DatabaseURL:     p.str("DATABASE_URL", ""),
		DBMaxConns:      int32(p.intRange("DB_MAX_CONNS", 20, 1, 1000)),
		LogLevel:        p.level("LOG_LEVEL", slog.LevelInfo),
		LogFormat:       p.oneOf("LOG_FORMAT", "json", "json", "text"),
		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		Auth: Auth{
			Secret:        []byte(p.str("AUTH_JWT_SECRET", "")),
			PublicKeyFile: p.str("AUTH_JWT_PUBLIC_KEY_FILE", ""),
			Issuer:        p.str("AUTH_JWT_ISSUER", ""),
			Audience:      p.str("AUTH_JWT_AUDIENCE", ""),
			UserClaim:     p.str("AUTH_JWT_USER_CLAIM", "sub"),
			Leeway:        p.duration("AUTH_JWT_LEEWAY", 30*time.Second),
		},
		Classroom: Classroom{
			MaxMembers: p.intRange("CLASSROOM_MAX_MEMBERS", 500, 1, 100_000),
		},
		WS: WS{
			MaxPayloadBytes:  p.intRange("WS_MAX_PAYLOAD_BYTES", 2048, 64, 1<<20),
			CursorRatePerSec: p.intRange("WS_CURSOR_RATE_PER_SEC", 20, 1, 1000),
			CursorBurst:      p.intRange("WS_CURSOR_BURST", 20, 1, 1000),
			AllowedOrigins:   p.list("WS_ALLOWED_ORIGINS"),
			PingInterval:     p.durationRange("WS_PING_INTERVAL", 25*time.Second, 10*time.Millisecond, time.Hour),
			PongTimeout:      p.durationRange("WS_PONG_TIMEOUT", 10*time.Second, 10*time.Millisecond, 10*time.Minute),
			WriteTimeout:     p.durationRange("WS_WRITE_TIMEOUT", 10*time.Second, 10*time.Millisecond, 10*time.Minute),
			SendQueue:        p.intRange("WS_SEND_QUEUE", 256, 4, 1<<16),
		},
	}
	for _, o := range c.WS.AllowedOrigins {
		if _, err := path.Match(o, ""); err != nil {
			p.fail("WS_ALLOWED_ORIGINS", fmt.Sprintf("%q is not a valid pattern", o))
		}
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.fail("DATABASE_URL", "must be a postgres:// URL")
		}
	}
	if len(c.Auth.Secret) == 0 && c.Auth.PublicKeyFile == "" {
		p.fail("AUTH_JWT_SECRET", "one of AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY_FILE must be set")
	}
	if n := len(c.Auth.Secret); n > 0 && n < MinSecretBytes {
		p.fail("AUTH_JWT_SECRET", fmt.Sprintf("must be at least %d bytes, got %d", MinSecretBytes, n))
	}
	if strings.TrimSpace(c.Auth.UserClaim) == "" {
		p.fail("AUTH_JWT_USER_CLAIM", "must not be empty")
	}
	if c.Auth.Leeway < 0 || c.Auth.Leeway > 5*time.Minute {
		p.fail("AUTH_JWT_LEEWAY", "must be between 0s and 5m")
	}
	return c, p.err()
}

// RequireDatabase reports a clear error when no database is configured.
func (c Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return errors.New("config: DATABASE_URL: must be set (make run provisions a local cluster and sets it)")
	}
	return nil
}

// parser accumulates per-variable problems while reading values.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, msg string) {
	p.errs = append(p.errs, fmt.Errorf("config: %s: %s", name, msg))
}

func (p *parser) err() error { return errors.Join(p.errs...) }

func (p *parser) str(name, def string) string {
	if v := p.getenv(name); v != "" {
		return v
	}
	return def
}

func (p *parser) oneOf(name, def string, allowed ...string) string {
	v := p.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", ")))
	return def
}

func (p *parser) intRange(name string, def, lo, hi int) int {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("%q is not an integer between %d and %d", v, lo, hi))
		return def
	}
	return n
}

func (p *parser) int64Range(name string, def, lo, hi int64) int64 {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("%q is not an integer between %d and %d", v, lo, hi))
		return def
	}
	return n
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(name, fmt.Sprintf("%q is not a duration such as 30s or 1h", v))
		return def
	}
	return d
}

func (p *parser) durationRange(name string, def, lo, hi time.Duration) time.Duration {
	d := p.duration(name, def)
	if d < lo || d > hi {
		p.fail(name, fmt.Sprintf("%s is not between %s and %s", d, lo, hi))
		return def
	}
	return d
}

// list reads a comma-separated list, dropping empty items.
func (p *parser) list(name string) []string {
	var out []string
	for _, v := range strings.Split(p.getenv(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (p *parser) level(name string, def slog.Level) slog.Level {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(name, fmt.Sprintf("%q is not one of debug, info, warn, error", v))
		return def
	}
	return l
}
