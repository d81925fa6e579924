// Package devtoken mints short-lived access tokens for development sign-in: the demo's user
// picker (DEV_TOKENS=1, which `make run` sets). The configuration refuses DEV_TOKENS unless
// the secret is the published dev secret, so these tokens never exist in a deployment.
package devtoken

import (
	"fmt"
	"strings"
	"time"

	"github.com/m4sh/backend/internal/auth"
)

// TTL is how long a minted token is valid: short, since anyone can mint one; clients mint
// again on 401 or a 4401 close.
const TTL = 15 * time.Minute

// User is one user the picker offers; Role is a suggestion (a classroom's tutor is whoever
// creates it).
type User struct {
	ID, Name, Role string
}

// Token is a minted access token.
type Token struct {
	AccessToken string
	ExpiresAt   time.Time
	UserID      string
	Name        string
}

// Minter signs dev tokens with the dev secret.
type Minter struct {
	secret []byte
	claims Claims
	now    func() time.Time
	users  []User
}

// Claims are the verifier's settings a dev token must satisfy (AUTH_JWT_ISSUER,
// AUTH_JWT_AUDIENCE, AUTH_JWT_USER_CLAIM); empty fields are left out or defaulted.
type Claims struct {
	Issuer, Audience, UserClaim string
}

// New returns a Minter signing with secret tokens that carry claims; now is the clock
// (time.Now in the service).
func New(secret []byte, claims Claims, now func() time.Time) *Minter {
	return &Minter{secret: secret, claims: claims, now: now, users: []User{
		{ID: "tina", Name: "Tina", Role: "tutor"},
		{ID: "sam", Name: "Sam", Role: "student"},
		{ID: "ana", Name: "Ana", Role: "student"},
		{ID: "lee", Name: "Lee", Role: "student"},
	}}
}

// Users returns the users the picker offers, the tutor first.
func (m *Minter) Users() []User {
	return append([]User(nil), m.users...)
}

// Mint signs a token for userID (already validated as a user id by the API). An empty name
// becomes the dev user's name, else the user id.
func (m *Minter) Mint(userID, name string) (Token, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = userID
		for _, u := range m.users {
			if u.ID == userID {
				name = u.Name
			}
		}
	}
	now := m.now()
	tok, err := auth.Mint(m.secret, auth.MintOptions{UserID: userID, Name: name, TTL: TTL, Now: now,
		Issuer: m.claims.Issuer, Audience: m.claims.Audience, UserClaim: m.claims.UserClaim})
	if err != nil {
		return Token{}, fmt.Errorf("signing dev token: %w", err)
	}
	return Token{AccessToken: tok, ExpiresAt: now.Add(TTL).Truncate(time.Second), UserID: userID, Name: name}, nil
}
