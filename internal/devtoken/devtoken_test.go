package devtoken_test

import (
	"errors"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/config"
	"github.com/m4sh/backend/internal/devtoken"
)

// TestMintIsValidAndShortLived: a minted token verifies (user, name) until TTL has passed,
// and not after; the name defaults to the dev user's, else the user id.
func TestMintIsValidAndShortLived(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)
	m := devtoken.New([]byte(config.DevSecret), devtoken.Claims{}, func() time.Time { return now })
	tests := []struct{ user, name, wantName string }{
		{"tina", "", "Tina"},
		{"bob", "", "bob"},
		{"sam", "Samuel", "Samuel"},
	}
	for _, tt := range tests {
		tok, err := m.Mint(tt.user, tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if !tok.ExpiresAt.Equal(now.Add(15*time.Minute)) || devtoken.TTL != 15*time.Minute {
			t.Errorf("Mint(%q).ExpiresAt = %v, want %v (15 minutes)", tt.user, tok.ExpiresAt, now.Add(15*time.Minute))
		}
		at := func(d time.Duration) *auth.Verifier {
			v, err := auth.NewVerifier(auth.Options{Secret: []byte(config.DevSecret), Now: func() time.Time { return now.Add(d) }})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		p, err := at(14 * time.Minute).Verify(tok.AccessToken)
		if err != nil || p.UserID != tt.user || p.Name != tt.wantName || tok.Name != tt.wantName {
			t.Errorf("Verify(Mint(%q, %q)) = %+v, %v; want user %q named %q", tt.user, tt.name, p, err, tt.user, tt.wantName)
		}
		if _, err := at(16 * time.Minute).Verify(tok.AccessToken); !errors.Is(err, auth.ErrExpired) {
			t.Errorf("Verify(Mint(%q)) 16 minutes later = %v, want ErrExpired", tt.user, err)
		}
	}
	if u := m.Users(); len(u) < 3 || u[0].Role != "tutor" || u[1].Role != "student" {
		t.Errorf("Users() = %+v, want the tutor first, then students", u)
	}
}

// TestMintCarriesTheVerifiersClaims: with an issuer, an audience and another user claim
// configured, minted tokens verify under those settings (else the demo would mint and be
// refused in a loop).
func TestMintCarriesTheVerifiersClaims(t *testing.T) {
	t.Parallel()
	claims := devtoken.Claims{Issuer: "https://id.example.test", Audience: "m4sh", UserClaim: "uid"}
	tok, err := devtoken.New([]byte(config.DevSecret), claims, time.Now).Mint("sam", "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Options{Secret: []byte(config.DevSecret), Issuer: claims.Issuer, Audience: claims.Audience, UserClaim: claims.UserClaim})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.Verify(tok.AccessToken); err != nil || p.UserID != "sam" {
		t.Errorf("Verify = %+v, %v; want sam", p, err)
	}
}
