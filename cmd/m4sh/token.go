package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/m4sh/backend/internal/auth"
	"github.com/m4sh/backend/internal/config"
)

// token mints a dev access token with the configured HS256 secret and claims, so that it
// verifies against this service's own configuration. A negative -ttl mints a token that
// expired that long ago, for testing how clients handle 401 token_expired and the 4401 close;
// it must be further in the past than AUTH_JWT_LEEWAY, or the service would still accept it.
func token(cfg config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id (required)")
	name := fs.String("name", "", "display name")
	ttl := fs.Duration("ttl", time.Hour, "lifetime; negative: already expired that long ago")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		fs.Usage()
		return errors.New("token: -user is required")
	}
	if *ttl == 0 {
		return errors.New("token: -ttl must not be 0")
	}
	if *ttl < 0 && -*ttl <= cfg.Auth.Leeway {
		return fmt.Errorf("token: a negative -ttl must be further in the past than AUTH_JWT_LEEWAY (%s) to be refused as expired", cfg.Auth.Leeway)
	}
	if len(cfg.Auth.Secret) == 0 {
		return errors.New("token: AUTH_JWT_SECRET must be set to mint HS256 tokens")
	}
	t, err := auth.Mint(cfg.Auth.Secret, auth.MintOptions{
		UserID: *user, Name: *name, TTL: *ttl,
		UserClaim: cfg.Auth.UserClaim, Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience,
	})
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, t)
	return err
}
