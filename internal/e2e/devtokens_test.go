package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/m4sh/backend/gen/client"
	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/config"
)

// devEnv starts the service as `make run` does: the dev secret and DEV_TOKENS=1.
func devEnv(t *testing.T) *apptest.Env {
	t.Helper()
	return apptest.New(t, map[string]string{"DEV_TOKENS": "1", "AUTH_JWT_SECRET": config.DevSecret})
}

// TestDevRoutesAbsentByDefault: without DEV_TOKENS the dev sign-in routes answer exactly as
// a path that never existed (status, headers that matter, problem body), so a deployment
// does not reveal them.
func TestDevRoutesAbsentByDefault(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, nil)
	// The problem body without what names the request itself.
	answer := func(r apptest.Response) (int, string, map[string]any) {
		m := r.JSON(t)
		delete(m, "instance")
		delete(m, "request_id")
		return r.Status, r.Header.Get("Content-Type") + "|" + r.Header.Get("Allow") + "|" + r.Header.Get("Connection"), m
	}
	tests := []struct {
		name        string
		dev, absent apptest.Request
	}{
		{"list users", apptest.Request{Method: "GET", Path: "/api/v1/dev/users/", NoAuth: true},
			apptest.Request{Method: "GET", Path: "/api/v1/dev/nothing/", NoAuth: true}},
		{"mint", apptest.Request{Method: "POST", Path: "/api/v1/dev/tokens/", Body: map[string]string{"user_id": "tina"}, NoAuth: true},
			apptest.Request{Method: "POST", Path: "/api/v1/dev/nothing/", Body: map[string]string{"user_id": "tina"}, NoAuth: true}},
		{"mint with a token", apptest.Request{Method: "POST", Path: "/api/v1/dev/tokens/", Body: map[string]string{"user_id": "tina"}, Token: env.Token("tina")},
			apptest.Request{Method: "POST", Path: "/api/v1/dev/nothing/", Body: map[string]string{"user_id": "tina"}, Token: env.Token("tina")}},
		{"wrong method", apptest.Request{Method: "DELETE", Path: "/api/v1/dev/tokens/", NoAuth: true},
			apptest.Request{Method: "DELETE", Path: "/api/v1/dev/nothing/", NoAuth: true}},
	}
	for _, tt := range tests {
		ds, dh, db := answer(env.Do(tt.dev))
		as, ah, ab := answer(env.Do(tt.absent))
		if ds != http.StatusNotFound || ds != as || dh != ah || !maps.Equal(db, ab) {
			t.Errorf("%s: %s %s = %d %q %v; want what %s gets: %d %q %v", tt.name, tt.dev.Method, tt.dev.Path, ds, dh, db, tt.absent.Path, as, ah, ab)
		}
	}
}

// TestDevTokens: with DEV_TOKENS=1 (and the dev secret) the picker's users are listed and a
// token minted for any user id is accepted by the API as that user, expires in 15 minutes,
// and an invalid user id is refused.
func TestDevTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := devEnv(t)
	c, err := client.NewClientWithResponses(env.Server.URL, client.WithHTTPClient(env.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	users, err := c.DevUserListWithResponse(ctx)
	if err != nil || users.JSON200 == nil || len(users.JSON200.Items) < 3 || users.JSON200.Items[0].UserId != "tina" || users.JSON200.Items[0].Role != client.Tutor {
		t.Fatalf("DevUserList = %d %s, %v; want tina the tutor first", users.StatusCode(), users.Body, err)
	}
	before := time.Now().Truncate(time.Second)
	for _, tt := range []struct {
		user     string
		name     *string
		wantName string
	}{{"sam", nil, "Sam"}, {"bob", new("Bob B."), "Bob B."}} {
		r, err := c.DevTokenCreateWithResponse(ctx, client.DevTokenCreateJSONRequestBody{UserId: tt.user, Name: tt.name})
		if err != nil || r.JSON201 == nil {
			t.Fatalf("DevTokenCreate(%s) = %d %s, %v", tt.user, r.StatusCode(), r.Body, err)
		}
		tok := r.JSON201
		if tok.ExpiresIn != 900 || tok.TokenType != client.Bearer || tok.ExpiresAt.Before(before.Add(15*time.Minute)) || tok.ExpiresAt.After(time.Now().Add(15*time.Minute)) {
			t.Errorf("DevTokenCreate(%s) = expires_in %d, %s, expires_at %v; want 900 s from now", tt.user, tok.ExpiresIn, tok.TokenType, tok.ExpiresAt)
		}
		if exp, iat := claims(t, tok.AccessToken); exp-iat != 900 {
			t.Errorf("DevTokenCreate(%s): exp - iat = %d s, want 900", tt.user, exp-iat)
		}
		me := env.Do(apptest.Request{Method: "GET", Path: "/api/v1/me/", Token: tok.AccessToken})
		if m := me.JSON(t); me.Status != http.StatusOK || m["user_id"] != tt.user || m["name"] != tt.wantName || tok.Name != tt.wantName {
			t.Errorf("GET /me with the dev token of %s = %d %v; want %s named %q", tt.user, me.Status, m, tt.user, tt.wantName)
		}
	}
	for _, body := range []string{`{"user_id":" tina"}`, `{"user_id":""}`, `{"user_id":"tina","admin":true}`} {
		r := env.Do(apptest.Request{Method: "POST", Path: "/api/v1/dev/tokens/", Body: body, NoAuth: true})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "validation_error") {
			t.Errorf("POST /api/v1/dev/tokens/ %s = %d %s, want 400 validation_error", body, r.Status, r.Body)
		}
	}
}

// claims returns a JWT's exp and iat, unverified (the API verified it).
func claims(t *testing.T, tok string) (exp, iat int64) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Exp, Iat int64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Exp, c.Iat
}
