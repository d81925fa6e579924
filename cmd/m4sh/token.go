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
// verifies against this service's own configuration.
func token(cfg config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id (required)")
	name := fs.String("name", "", "display name")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		fs.Usage()
		return errors.New("token: -user is required")
	}
	if *ttl <= 0 {
		return errors.New("token: -ttl must be positive")
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
