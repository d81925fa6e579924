package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/m4sh/backend/internal/auth"
)

const secret = "auth-test-secret-0123456789abcdefghijkl"

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type keys struct {
	rsa    *rsa.PrivateKey
	pubPEM []byte
}

func setup(t *testing.T) keys {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return keys{rsa: k, pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

func claims(extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func hs(t *testing.T, key []byte, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	t.Parallel()
	k := setup(t)
	rs, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil)).SignedString(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	base := auth.Options{Secret: []byte(secret), Leeway: 30 * time.Second, Now: func() time.Time { return now }}
	withPub := base
	withPub.PublicKeyPEM = k.pubPEM
	pubOnly := auth.Options{PublicKeyPEM: k.pubPEM, Now: base.Now}
	withIssAud := base
	withIssAud.Issuer, withIssAud.Audience = "https://issuer.example", "m4sh"
	djangoStyle := base
	djangoStyle.UserClaim = "user_id"

	tests := []struct {
		name    string
		opts    auth.Options
		token   string
		want    string // user id, "" when refused
		expired bool
	}{
		{"valid HS256", base, hs(t, []byte(secret), claims(nil)), "alice", false},
		{"malformed", base, "not.a.jwt", "", false},
		{"garbage", base, "abc", "", false},
		{"bad signature", base, hs(t, []byte("another-secret-0123456789abcdefghijkl"), claims(nil)), "", false},
		{"alg none", base, none, "", false},
		{"alg none with public key too", withPub, none, "", false},
		{"HS256 signed with the RSA public key as secret", withPub, hs(t, k.pubPEM, claims(nil)), "", false},
		{"HS256 signed with the RSA public key, public key only", pubOnly, hs(t, k.pubPEM, claims(nil)), "", false},
		{"RS256 with public key", pubOnly, rs, "alice", false},
		{"RS256 without public key configured", base, rs, "", false},
		{"expired", base, hs(t, []byte(secret), claims(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "", true},
		{"expired within leeway", base, hs(t, []byte(secret), claims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), "alice", false},
		{"missing exp", base, hs(t, []byte(secret), claims(map[string]any{"exp": nil})), "", false},
		{"not yet valid", base, hs(t, []byte(secret), claims(map[string]any{"nbf": now.Add(time.Minute).Unix()})), "", false},
		{"nbf within leeway", base, hs(t, []byte(secret), claims(map[string]any{"nbf": now.Add(10 * time.Second).Unix()})), "alice", false},
		{"issued in the future", base, hs(t, []byte(secret), claims(map[string]any{"iat": now.Add(time.Hour).Unix()})), "", false},
		{"right iss and aud", withIssAud, hs(t, []byte(secret), claims(map[string]any{"iss": "https://issuer.example", "aud": "m4sh"})), "alice", false},
		{"wrong iss", withIssAud, hs(t, []byte(secret), claims(map[string]any{"iss": "https://evil.example", "aud": "m4sh"})), "", false},
		{"wrong aud", withIssAud, hs(t, []byte(secret), claims(map[string]any{"iss": "https://issuer.example", "aud": "other"})), "", false},
		{"missing iss when required", withIssAud, hs(t, []byte(secret), claims(map[string]any{"aud": "m4sh"})), "", false},
		{"refresh token", base, hs(t, []byte(secret), claims(map[string]any{"token_type": "refresh"})), "", false},
		{"access token_type", base, hs(t, []byte(secret), claims(map[string]any{"token_type": "access"})), "alice", false},
		{"numeric user id", djangoStyle, hs(t, []byte(secret), claims(map[string]any{"user_id": 42})), "42", false},
		{"string numeric user id", djangoStyle, hs(t, []byte(secret), claims(map[string]any{"user_id": "42"})), "42", false},
		{"large numeric user id kept exact", djangoStyle, hs(t, []byte(secret), claims(map[string]any{"user_id": int64(9007199254740993)})), "9007199254740993", false},
		{"fractional user id", djangoStyle, hs(t, []byte(secret), claims(map[string]any{"user_id": 4.5})), "", false},
		{"missing user claim", djangoStyle, hs(t, []byte(secret), claims(nil)), "", false},
		{"empty sub", base, hs(t, []byte(secret), claims(map[string]any{"sub": ""})), "", false},
		{"sub too long", base, hs(t, []byte(secret), claims(map[string]any{"sub": strings.Repeat("a", 129)})), "", false},
		{"sub with NUL", base, hs(t, []byte(secret), claims(map[string]any{"sub": "al\x00ice"})), "", false},
		{"sub with zero-width space", base, hs(t, []byte(secret), claims(map[string]any{"sub": "al\u200bice"})), "", false},
		{"sub with bidi override", base, hs(t, []byte(secret), claims(map[string]any{"sub": "\u202ealice"})), "", false},
		{"sub with leading space", base, hs(t, []byte(secret), claims(map[string]any{"sub": " alice"})), "", false},
		{"sub of 128 bytes", base, hs(t, []byte(secret), claims(map[string]any{"sub": strings.Repeat("é", 64)})), strings.Repeat("é", 64), false},
		{"boolean sub", base, hs(t, []byte(secret), claims(map[string]any{"sub": true})), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.NewVerifier(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(tt.token)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Verify accepted the token as %q, want refusal", p.UserID)
				}
				if !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("Verify error %v does not wrap ErrInvalidToken", err)
				}
				if got := errors.Is(err, auth.ErrExpired); got != tt.expired {
					t.Errorf("errors.Is(err, ErrExpired) = %v, want %v (err %v)", got, tt.expired, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v, want user %q", err, tt.want)
			}
			if p.UserID != tt.want {
				t.Errorf("Verify user = %q, want %q", p.UserID, tt.want)
			}
		})
	}
}

func TestNewVerifierNeedsAKey(t *testing.T) {
	t.Parallel()
	if _, err := auth.NewVerifier(auth.Options{}); err == nil {
		t.Fatal("NewVerifier with no key succeeded")
	}
	if _, err := auth.NewVerifier(auth.Options{PublicKeyPEM: []byte("not pem")}); err == nil {
		t.Fatal("NewVerifier with a bad public key succeeded")
	}
}

func TestMintRoundTrip(t *testing.T) {
	t.Parallel()
	tok, err := auth.Mint([]byte(secret), auth.MintOptions{UserID: "bob", Name: " Bob\x00\u200b\u202e ", TTL: time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Options{Secret: []byte(secret), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "bob" || p.Name != "Bob" || !p.Expires.Equal(now.Add(time.Minute)) {
		t.Errorf("Verify(Mint) = %+v, want bob/Bob expiring %v", p, now.Add(time.Minute))
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"abc", "", false},
	}
	for _, tt := range tests {
		got, ok := auth.BearerToken(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
