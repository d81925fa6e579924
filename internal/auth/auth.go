// Package auth verifies bearer JWTs (README: Auth decisions) and carries the authenticated principal in a
// context. It does not issue tokens for production use; Mint exists for the dev `m4sh token`
// command and tests.
package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/m4sh/backend/internal/clienttext"
)

// Principal is the authenticated caller.
type Principal struct {
	UserID string
	Name   string
	// Expires is the token's exp; long-lived connections close when it passes.
	Expires time.Time
}

// Limits on identity values taken from tokens.
const (
	MaxUserIDLen = clienttext.MaxUserIDBytes
	MaxNameLen   = 100
)

// ErrInvalidToken is returned (wrapped) for every token the verifier refuses. Callers must
// not show the wrapped detail to clients: it helps operators, not attackers.
var ErrInvalidToken = errors.New("invalid token")

// Options configure a Verifier.
type Options struct {
	Secret        []byte // HS256 key; empty disables HS256
	PublicKeyPEM  []byte // RS256/ES256/EdDSA key; empty disables asymmetric algorithms
	Issuer        string // required iss when set
	Audience      string // required aud when set
	UserClaim     string // claim holding the user id, default "sub"
	Leeway        time.Duration
	Now           func() time.Time // clock, default time.Now
	MaxTokenBytes int              // default 8 KiB
}

// Verifier checks tokens with an explicit algorithm allow-list: only algorithms whose key is
// configured are accepted, and each algorithm only ever gets a key of its own type, which is
// what rules out `alg: none` and HS256-with-the-public-key confusion.
type Verifier struct {
	opts   Options
	pub    crypto.PublicKey
	parser *jwt.Parser
}

// NewVerifier builds a Verifier; it fails when no key is configured or the public key is
// unusable.
func NewVerifier(o Options) (*Verifier, error) {
	if o.UserClaim == "" {
		o.UserClaim = "sub"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxTokenBytes == 0 {
		o.MaxTokenBytes = 8 << 10
	}
	v := &Verifier{opts: o}
	var methods []string
	if len(o.Secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if len(o.PublicKeyPEM) > 0 {
		pub, algs, err := parsePublicKey(o.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		v.pub = pub
		methods = append(methods, algs...)
	}
	if len(methods) == 0 {
		return nil, errors.New("auth: no verification key configured")
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
		jwt.WithJSONNumber(),
		jwt.WithTimeFunc(o.Now),
	}
	if o.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		popts = append(popts, jwt.WithAudience(o.Audience))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// LoadPublicKeyFile reads a PEM public key file; empty path returns nil.
func LoadPublicKeyFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading public key: %w", err)
	}
	return b, nil
}

func parsePublicKey(pemBytes []byte) (crypto.PublicKey, []string, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pemBytes); err == nil {
		return k, []string{"RS256"}, nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(pemBytes); err == nil {
		return k, []string{"ES256"}, nil
	}
	if k, err := jwt.ParseEdPublicKeyFromPEM(pemBytes); err == nil {
		return k, []string{"EdDSA"}, nil
	}
	return nil, nil, errors.New("auth: public key is not an RSA, EC or Ed25519 PEM public key")
}

// keyFor hands each algorithm family only its own key type.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(v.opts.Secret) == 0 {
			return nil, errors.New("hmac not enabled")
		}
		return v.opts.Secret, nil
	case *jwt.SigningMethodRSA:
		if k, ok := v.pub.(*rsa.PublicKey); ok {
			return k, nil
		}
	case *jwt.SigningMethodECDSA:
		if k, ok := v.pub.(*ecdsa.PublicKey); ok {
			return k, nil
		}
	case *jwt.SigningMethodEd25519:
		if k, ok := v.pub.(ed25519.PublicKey); ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("no key for algorithm %q", t.Method.Alg())
}

// Verify parses and checks a compact JWT and returns its principal.
func (v *Verifier) Verify(token string) (Principal, error) {
	if len(token) > v.opts.MaxTokenBytes {
		return Principal{}, fmt.Errorf("%w: token too long", ErrInvalidToken)
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, v.keyFor); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrExpired)
		}
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if tt, ok := claims["token_type"]; ok && tt != "access" {
		return Principal{}, fmt.Errorf("%w: token_type %v is not access", ErrInvalidToken, tt)
	}
	uid, err := canonicalUserID(claims[v.opts.UserClaim])
	if err != nil {
		return Principal{}, fmt.Errorf("%w: claim %s: %w", ErrInvalidToken, v.opts.UserClaim, err)
	}
	p := Principal{UserID: uid}
	if n, ok := claims["name"].(string); ok {
		p.Name = cleanName(n)
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.Expires = exp.Time
	}
	return p, nil
}

// ErrExpired marks a token refused because its exp passed.
var ErrExpired = errors.New("token expired")

// canonicalUserID accepts string and integer claims (Django SimpleJWT puts integer ids in
// user_id) and returns one canonical string, so "42" and 42 are the same user.
func canonicalUserID(v any) (string, error) {
	switch x := v.(type) {
	case string:
		// The same rule as a user id sent to POST .../members/ (README: Hostile input and load).
		if err := clienttext.UserID(x); err != nil {
			return "", err
		}
		return x, nil
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return "", errors.New("numeric user id must be an integer")
		}
		return strconv.FormatInt(n, 10), nil
	case nil:
		return "", errors.New("missing")
	default:
		return "", fmt.Errorf("unsupported type %T", v)
	}
}

// cleanName cleans a display name like every client-chosen text; one left empty means the
// token has no name.
func cleanName(n string) string {
	return strings.TrimSpace(clienttext.Truncate(clienttext.Clean(n), MaxNameLen))
}

// BearerToken extracts the token from an Authorization header value ("Bearer <jwt>",
// scheme case-insensitive).
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// MintOptions describe a token for Mint.
type MintOptions struct {
	UserID    string
	Name      string
	TTL       time.Duration
	UserClaim string
	Issuer    string
	Audience  string
	Now       time.Time
}

// Mint signs an HS256 access token. It is for the dev `token` command and tests.
func Mint(secret []byte, o MintOptions) (string, error) {
	if o.UserClaim == "" {
		o.UserClaim = "sub"
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	c := jwt.MapClaims{
		o.UserClaim:  o.UserID,
		"iat":        o.Now.Unix(),
		"exp":        o.Now.Add(o.TTL).Unix(),
		"token_type": "access",
	}
	if o.Name != "" {
		c["name"] = o.Name
	}
	if o.Issuer != "" {
		c["iss"] = o.Issuer
	}
	if o.Audience != "" {
		c["aud"] = o.Audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of an authenticated request.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
