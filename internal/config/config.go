// Package config reads the service's configuration from environment variables, applies the
// documented defaults and validates it, so that a bad value stops start-up with a message
// naming the variable. Only cmd/ calls it; everything else receives plain values.
package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
	DebugAddr       string        // DEBUG_ADDR: runtime profiles (/debug/pprof/); empty = off
	DatabaseURL     string        // DATABASE_URL
	DBMaxConns      int32         // DB_MAX_CONNS
	LogLevel        slog.Level    // LOG_LEVEL
	LogFormat       string        // LOG_FORMAT: json | text
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT

	HTTP      HTTP
	Auth      Auth
	Classroom Classroom
	Telemetry Telemetry
	Solo      Solo
	WS        WS
	Cluster   Cluster
	Tracing   Tracing
	Webhook   Webhook
}

// Cluster configures running several nodes behind a load balancer (issue 9).
type Cluster struct {
	PubSub            string        // PUBSUB: memory (one node) | nats
	NATSURL           string        // NATS_URL
	HeartbeatInterval time.Duration // CLUSTER_HEARTBEAT_INTERVAL
	PurgeAfter        time.Duration // CLUSTER_PURGE_AFTER: a node silent this long is dead
}

// WS configures the classroom presence WebSocket (the AsyncAPI document).
type WS struct {
	MaxPayloadBytes  int           // WS_MAX_PAYLOAD_BYTES: larger inbound frames close with 4400
	CursorRatePerSec int           // WS_CURSOR_RATE_PER_SEC: token bucket rate per user and session
	CursorBurst      int           // WS_CURSOR_BURST: token bucket size
	AllowedOrigins   []string      // WS_ALLOWED_ORIGINS: Origin host patterns besides the request's own host
	PingInterval     time.Duration // WS_PING_INTERVAL
	PongTimeout      time.Duration // WS_PONG_TIMEOUT
	WriteTimeout     time.Duration // WS_WRITE_TIMEOUT
	SendQueue        int           // WS_SEND_QUEUE: presence frames queued per connection before 1013
	MaxWritePause    time.Duration // WS_MAX_WRITE_PAUSE: longest pause between a connection's writes while the process is behind; 0 = off
	// WS_MAX_CONNS_PER_USER and WS_MAX_CONNS_PER_SESSION: connections to one session across
	// the cluster; the one over a cap is closed with 4409.
	MaxConnsPerUser    int
	MaxConnsPerSession int

	// LeaveGrace (WS_LEAVE_GRACE): a user whose last connection went without a 4403 stays
	// present this long; a reconnect within it tells others nothing. 0 = off.
	LeaveGrace time.Duration
}

// HTTP configures what the HTTP layer tolerates from one request or one user (README: Hostile input and load).
type HTTP struct {
	// BodyTimeout bounds how long a request body may take to arrive (HTTP_BODY_TIMEOUT);
	// past it the request is answered 408 and its connection closed.
	BodyTimeout time.Duration
	// WriteRatePerMin is how many resources (classrooms, members, sessions, solo sessions)
	// one user may create per minute on one node (API_WRITE_RATE_PER_MIN).
	WriteRatePerMin int
}

// Classroom configures the classrooms feature.
type Classroom struct {
	MaxMembers int // CLASSROOM_MAX_MEMBERS
}

// Auth configures bearer-token verification (README: Auth decisions).
type Auth struct {
	Secret        []byte        // AUTH_JWT_SECRET (HS256)
	PublicKeyFile string        // AUTH_JWT_PUBLIC_KEY_FILE (RS256/ES256/EdDSA, PEM)
	Issuer        string        // AUTH_JWT_ISSUER
	Audience      string        // AUTH_JWT_AUDIENCE
	UserClaim     string        // AUTH_JWT_USER_CLAIM
	Leeway        time.Duration // AUTH_JWT_LEEWAY
	// DevTokens (DEV_TOKENS) mounts the dev sign-in routes (/api/v1/dev/) that mint tokens
	// for anyone. Load refuses it unless Secret is DevSecret, so that no deployment with a
	// real secret can ever hand out tokens.
	DevTokens bool
}

// DevSecret is the published HS256 secret of `make run` (the Makefile's DEV_SECRET; a test
// keeps the two equal). Anyone can sign tokens with it: it is only for development.
const DevSecret = "m4sh-dev-secret-not-for-production-0123456789"

// Telemetry configures the public telemetry ingest (README: Telemetry).
type Telemetry struct {
	MaxBytes       int64          // TELEMETRY_MAX_BYTES: body limit, as sent and inflated
	RatePerMin     int            // TELEMETRY_RATE_PER_MIN: requests per client per minute
	TrustedProxies []netip.Prefix // TRUSTED_PROXIES: peers believed about X-Forwarded-For
	RetentionDays  int            // TELEMETRY_RETENTION_DAYS
	// HashSalt keys the stored client-address hash (TELEMETRY_HASH_SALT). When unset it is
	// derived from AUTH_JWT_SECRET, so that hashes stay stable across restarts and nodes;
	// it stays empty when neither is set, and the service then refuses to start.
	HashSalt      []byte
	BufferEvents  int           // TELEMETRY_BUFFER_EVENTS
	BufferBytes   int           // TELEMETRY_BUFFER_BYTES
	FlushEvents   int           // TELEMETRY_FLUSH_EVENTS
	FlushInterval time.Duration // TELEMETRY_FLUSH_INTERVAL
	MaxClients    int           // TELEMETRY_THROTTLE_MAX_CLIENTS: throttle entries kept at most
}

// MinHashSaltBytes is the shortest TELEMETRY_HASH_SALT accepted.
const MinHashSaltBytes = 16

// Solo configures the solo workspace's snapshots and their storage (README: Snapshot and quota decisions).
type Solo struct {
	QuotaBytes       int64  // SOLO_QUOTA_BYTES: default per-user quota
	SnapshotMaxBytes int64  // SOLO_SNAPSHOT_MAX_BYTES: largest snapshot body
	StorageBackend   string // STORAGE_BACKEND: local | s3
	StorageDir       string // STORAGE_DIR: root of the local backend
	S3               S3
	KeepLast         int           // SOLO_SNAPSHOT_RETENTION_KEEP_LAST: revisions kept per session
	GCInterval       time.Duration // SOLO_SNAPSHOT_GC_INTERVAL: how often retention runs
	UploadsInFlight  int           // SOLO_UPLOADS_IN_FLIGHT: a user's uploads in flight per process
	// DeletionGrace (SOLO_SNAPSHOT_DELETION_GRACE) is how long freed snapshot bytes stay in the blob
	// store after GC dropped their last revision, so that reads that began before finish.
	DeletionGrace time.Duration
	ReadMemory    int64 // SOLO_READ_MEMORY_BYTES: bytes snapshot reads may hold at once per process
}

// S3 configures the s3 blob backend. Credentials come from the AWS SDK's default chain
// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared config, IAM role) and are never logged.
type S3 struct {
	Endpoint       string // S3_ENDPOINT: empty for AWS, a URL for S3-compatible stores
	Region         string // S3_REGION
	Bucket         string // S3_BUCKET
	Prefix         string // S3_PREFIX
	ForcePathStyle bool   // S3_FORCE_PATH_STYLE
	// Static credentials, when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are both set
	// (read through the same getenv as everything else); otherwise the SDK's default chain.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // AWS_SESSION_TOKEN
}

// String keeps credentials out of logs and test output.
func (s S3) String() string {
	return fmt.Sprintf("{Endpoint:%s Region:%s Bucket:%s Prefix:%s ForcePathStyle:%t static credentials:%t}",
		s.Endpoint, s.Region, s.Bucket, s.Prefix, s.ForcePathStyle, s.AccessKeyID != "")
}

// MaxSnapshotBytesLimit bounds SOLO_SNAPSHOT_MAX_BYTES: an upload is held in memory while it
// is hashed and checked against the quota.
const MaxSnapshotBytesLimit = 256 << 20

// MinSecretBytes is the shortest HS256 secret accepted: shorter ones are guessable offline.
const MinSecretBytes = 32

// Load reads the configuration through getenv. It collects every problem before returning so
// that an operator fixes them all in one go.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		HTTPAddr:        p.str("HTTP_ADDR", ":8080"),
		DebugAddr:       p.str("DEBUG_ADDR", ""),
		DatabaseURL:     p.str("DATABASE_URL", ""),
		DBMaxConns:      int32(p.intRange("DB_MAX_CONNS", 20, 1, 1000)),
		LogLevel:        p.level("LOG_LEVEL", slog.LevelInfo),
		LogFormat:       p.oneOf("LOG_FORMAT", "json", "json", "text"),
		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		HTTP: HTTP{
			BodyTimeout:     p.durationRange("HTTP_BODY_TIMEOUT", 30*time.Second, 10*time.Millisecond, time.Hour),
			WriteRatePerMin: p.intRange("API_WRITE_RATE_PER_MIN", 120, 1, 1_000_000),
		},
		Auth: Auth{
			Secret:        []byte(p.str("AUTH_JWT_SECRET", "")),
			PublicKeyFile: p.str("AUTH_JWT_PUBLIC_KEY_FILE", ""),
			Issuer:        p.str("AUTH_JWT_ISSUER", ""),
			Audience:      p.str("AUTH_JWT_AUDIENCE", ""),
			UserClaim:     p.str("AUTH_JWT_USER_CLAIM", "sub"),
			Leeway:        p.duration("AUTH_JWT_LEEWAY", 30*time.Second),
			DevTokens:     p.boolean("DEV_TOKENS", false),
		},
		Classroom: Classroom{
			MaxMembers: p.intRange("CLASSROOM_MAX_MEMBERS", 500, 1, 100_000),
		},
		Solo: Solo{
			QuotaBytes:       p.int64Range("SOLO_QUOTA_BYTES", 100<<20, 0, 1<<50),
			SnapshotMaxBytes: p.int64Range("SOLO_SNAPSHOT_MAX_BYTES", 5<<20, 1, MaxSnapshotBytesLimit),
			UploadsInFlight:  p.intRange("SOLO_UPLOADS_IN_FLIGHT", 4, 1, 10_000),
			StorageBackend:   p.oneOf("STORAGE_BACKEND", "local", "local", "s3"),
			StorageDir:       p.str("STORAGE_DIR", "./.data/blobs"),
			S3: S3{
				Endpoint:        p.str("S3_ENDPOINT", ""),
				Region:          p.str("S3_REGION", "us-east-1"),
				Bucket:          p.str("S3_BUCKET", ""),
				Prefix:          p.str("S3_PREFIX", ""),
				ForcePathStyle:  p.boolean("S3_FORCE_PATH_STYLE", false),
				AccessKeyID:     p.str("AWS_ACCESS_KEY_ID", ""),
				SecretAccessKey: p.str("AWS_SECRET_ACCESS_KEY", ""),
				SessionToken:    p.str("AWS_SESSION_TOKEN", ""),
			},
			KeepLast:      p.intRange("SOLO_SNAPSHOT_RETENTION_KEEP_LAST", 20, 1, 1_000_000),
			GCInterval:    p.duration("SOLO_SNAPSHOT_GC_INTERVAL", time.Hour),
			DeletionGrace: p.durationRange("SOLO_SNAPSHOT_DELETION_GRACE", 2*time.Minute, 0, 24*time.Hour),
			ReadMemory:    p.int64Range("SOLO_READ_MEMORY_BYTES", 64<<20, 1<<20, 1<<40),
		},
		WS: WS{
			MaxPayloadBytes:    p.intRange("WS_MAX_PAYLOAD_BYTES", 2048, 64, 1<<20),
			CursorRatePerSec:   p.intRange("WS_CURSOR_RATE_PER_SEC", 20, 1, 1000),
			CursorBurst:        p.intRange("WS_CURSOR_BURST", 20, 1, 1000),
			AllowedOrigins:     p.list("WS_ALLOWED_ORIGINS"),
			PingInterval:       p.durationRange("WS_PING_INTERVAL", 25*time.Second, 10*time.Millisecond, time.Hour),
			PongTimeout:        p.durationRange("WS_PONG_TIMEOUT", 10*time.Second, 10*time.Millisecond, 10*time.Minute),
			WriteTimeout:       p.durationRange("WS_WRITE_TIMEOUT", 10*time.Second, 10*time.Millisecond, 10*time.Minute),
			SendQueue:          p.intRange("WS_SEND_QUEUE", 256, 4, 1<<16),
			MaxWritePause:      p.durationRange("WS_MAX_WRITE_PAUSE", 25*time.Millisecond, 0, time.Second),
			MaxConnsPerUser:    p.intRange("WS_MAX_CONNS_PER_USER", 8, 1, 1000),
			MaxConnsPerSession: p.intRange("WS_MAX_CONNS_PER_SESSION", 1000, 1, 1_000_000),

			LeaveGrace: p.durationRange("WS_LEAVE_GRACE", 5*time.Second, 0, 10*time.Minute),
		},
	}
	c.Cluster = Cluster{
		PubSub:            p.oneOf("PUBSUB", "memory", "memory", "nats"),
		NATSURL:           p.str("NATS_URL", ""),
		HeartbeatInterval: p.durationRange("CLUSTER_HEARTBEAT_INTERVAL", 10*time.Second, 100*time.Millisecond, time.Hour),
		PurgeAfter:        p.durationRange("CLUSTER_PURGE_AFTER", 30*time.Second, 300*time.Millisecond, 24*time.Hour),
	}
	if c.Cluster.PubSub == "nats" && c.Cluster.NATSURL == "" {
		p.fail("NATS_URL", "must be set when PUBSUB=nats")
	}
	if c.Cluster.PurgeAfter < 2*c.Cluster.HeartbeatInterval {
		p.fail("CLUSTER_PURGE_AFTER", "must be at least twice CLUSTER_HEARTBEAT_INTERVAL")
	}
	c.Webhook = loadWebhook(&p)
	c.Telemetry = Telemetry{
		MaxBytes:       p.int64Range("TELEMETRY_MAX_BYTES", 32768, 1024, 16<<20),
		RatePerMin:     p.intRange("TELEMETRY_RATE_PER_MIN", 300, 1, 1_000_000_000),
		TrustedProxies: p.prefixes("TRUSTED_PROXIES"),
		RetentionDays:  p.intRange("TELEMETRY_RETENTION_DAYS", 30, 1, 3650),
		HashSalt:       []byte(p.str("TELEMETRY_HASH_SALT", "")),
		BufferEvents:   p.intRange("TELEMETRY_BUFFER_EVENTS", 20_000, 1, 10_000_000),
		BufferBytes:    p.intRange("TELEMETRY_BUFFER_BYTES", 16<<20, 1<<10, 1<<34),
		FlushEvents:    p.intRange("TELEMETRY_FLUSH_EVENTS", 5_000, 1, 1_000_000),
		FlushInterval:  p.duration("TELEMETRY_FLUSH_INTERVAL", time.Second),
		MaxClients:     p.intRange("TELEMETRY_THROTTLE_MAX_CLIENTS", 100_000, 64, 100_000_000),
	}
	if n := len(c.Telemetry.HashSalt); n > 0 && n < MinHashSaltBytes {
		p.fail("TELEMETRY_HASH_SALT", fmt.Sprintf("must be at least %d bytes, got %d", MinHashSaltBytes, n))
	}
	if len(c.Telemetry.HashSalt) == 0 && len(c.Auth.Secret) > 0 {
		c.Telemetry.HashSalt = deriveKey(c.Auth.Secret, "m4sh telemetry client hash")
	}
	if c.Solo.StorageBackend == "s3" && c.Solo.S3.Bucket == "" {
		p.fail("S3_BUCKET", "must be set when STORAGE_BACKEND=s3")
	}
	if c.Solo.S3.Endpoint != "" {
		if u, err := url.Parse(c.Solo.S3.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("S3_ENDPOINT", "must be an http:// or https:// URL")
		}
	}
	if c.Solo.GCInterval < time.Minute {
		p.fail("SOLO_SNAPSHOT_GC_INTERVAL", "must be at least 1m")
	}
	// A grace shorter than a read's longest fetch (30 s) would let GC delete bytes a read
	// is still fetching; 0 is "delete at once", for tests and stores nobody reads while GC runs.
	if g := c.Solo.DeletionGrace; g > 0 && g < 30*time.Second {
		p.fail("SOLO_SNAPSHOT_DELETION_GRACE", "must be 0 or at least 30s")
	}
	if c.Telemetry.FlushInterval < 10*time.Millisecond {
		p.fail("TELEMETRY_FLUSH_INTERVAL", "must be at least 10ms")
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
	if n := len(c.Auth.Secret); n > 0 && n < MinSecretBytes {
		p.fail("AUTH_JWT_SECRET", fmt.Sprintf("must be at least %d bytes, got %d", MinSecretBytes, n))
	}
	if c.Auth.DevTokens && (string(c.Auth.Secret) != DevSecret || c.Auth.PublicKeyFile != "") {
		p.fail("DEV_TOKENS", "is for development only: it needs AUTH_JWT_SECRET set to the dev secret of make run (and no AUTH_JWT_PUBLIC_KEY_FILE); unset DEV_TOKENS")
	}
	if strings.TrimSpace(c.Auth.UserClaim) == "" {
		p.fail("AUTH_JWT_USER_CLAIM", "must not be empty")
	}
	if c.Auth.Leeway < 0 || c.Auth.Leeway > 5*time.Minute {
		p.fail("AUTH_JWT_LEEWAY", "must be between 0s and 5m")
	}
	c.Tracing = p.tracing()
	return c, p.err()
}

// RequireAuth reports a clear error when no token verification key is configured. Commands
// that serve or mint tokens call it; operator commands (migrate, gc, quota) do not need keys.
func (c Config) RequireAuth() error {
	if len(c.Auth.Secret) == 0 && c.Auth.PublicKeyFile == "" {
		return errors.New("config: AUTH_JWT_SECRET: one of AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY_FILE must be set")
	}
	return nil
}

// RequireDatabase reports a clear error when no database is configured.
func (c Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return errors.New("config: DATABASE_URL: must be set (make run provisions a local cluster and sets it)")
	}
	return nil
}

// RequireTelemetrySalt reports a clear error when no key for the client-address hash exists
// (a deployment verifying tokens with a public key only must set TELEMETRY_HASH_SALT).
func (c Config) RequireTelemetrySalt() error {
	if len(c.Telemetry.HashSalt) == 0 {
		return errors.New("config: TELEMETRY_HASH_SALT: must be set when AUTH_JWT_SECRET is not")
	}
	return nil
}

// deriveKey derives a purpose-specific key from a secret, so that the secret itself is never
// used for two things.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
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

// prefixes reads a comma- or space-separated list of CIDR prefixes or single addresses.
func (p *parser) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(p.getenv(name), func(r rune) bool { return r == ',' || r == ' ' }) {
		if pfx, err := netip.ParsePrefix(f); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			p.fail(name, fmt.Sprintf("%q is not a CIDR prefix or an IP address", f))
			continue
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out
}

func (p *parser) boolean(name string, def bool) bool {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("%q is not true or false", v))
		return def
	}
	return b
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
