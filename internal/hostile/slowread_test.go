package hostile_test

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

// TestSlowSnapshotReaders is readers that ask for an 8 MiB snapshot and never read the
// answer, against SOLO_READ_MEMORY_BYTES of 64 MiB. A read holds its revision (counted
// twice: stored chunks and decoded bytes) until it is answered, and one user's reads at most
// a quarter of the budget: a user's second read at once is refused 503 unavailable with
// Retry-After, without waiting; four users' slow reads fill the budget, and a fifth user's
// read waits 5 s for room and is refused the same way instead of adding 16 MiB more. Once
// the slow readers go, reads are answered again, with every byte.
func TestSlowSnapshotReaders(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	env := apptest.New(t, map[string]string{"SOLO_SNAPSHOT_MAX_BYTES": "16777216", "SOLO_READ_MEMORY_BYTES": "67108864",
		"API_WRITE_RATE_PER_MIN": "100000"})
	type user struct{ tok, latest string }
	users := make([]user, 5)
	scene := make([]byte, size)
	for i := range users {
		tok := env.Token([]string{"rita", "rolf", "rosa", "ruth", "remy"}[i])
		solo := apptest.MustCreate[api.SoloSession](t, env, tok, "/api/v1/solo/sessions/", map[string]any{"title": "big"})
		_, _ = rand.NewChaCha8([32]byte{7}).Read(scene)
		path := "/api/v1/solo/sessions/" + solo.Id.String() + "/snapshot/"
		if res := env.Do(apptest.Request{Method: http.MethodPost, Path: path, Token: tok, Body: scene,
			Header: map[string]string{"Content-Type": "application/octet-stream"}}); res.Status != http.StatusOK && res.Status != http.StatusCreated {
			t.Fatalf("upload = %d %s", res.Status, res.Body)
		}
		users[i] = user{tok, path + "latest/"}
	}
	refused := func(what string, u user, minWait, maxWait time.Duration) {
		t.Helper()
		start := time.Now()
		res := env.Do(apptest.Request{Method: http.MethodGet, Path: u.latest, Token: u.tok})
		waited := time.Since(start)
		if res.Status != http.StatusServiceUnavailable || code(res.Body) != "unavailable" || res.Header.Get("Retry-After") != "1" {
			t.Fatalf("%s = %d %s (Retry-After %q), want 503 unavailable with Retry-After 1", what, res.Status, res.Body, res.Header.Get("Retry-After"))
		}
		if waited < minWait || waited > maxWait {
			t.Errorf("%s refused after %v, want between %v and %v", what, waited, minWait, maxWait)
		}
	}

	slow := make([]*rawConn, 4)
	for i := range slow {
		slow[i] = dial(t, env)
		slow[i].head(http.MethodGet, users[i].latest, users[i].tok, -1)
	}
	time.Sleep(time.Second) // the reads have their revision in memory and block writing it
	refused("a slow reader's second read", users[0], 0, 2*time.Second)
	refused("another user's read with the budget full", users[4], 4*time.Second, 10*time.Second)

	for _, c := range slow {
		c.conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	var res apptest.Response
	for {
		res = env.Do(apptest.Request{Method: http.MethodGet, Path: users[4].latest, Token: users[4].tok})
		if res.Status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res.Status != http.StatusOK || !bytes.Equal(res.Body, scene) {
		t.Fatalf("read after the slow readers left = %d (%d bytes), want 200 with the %d bytes", res.Status, len(res.Body), size)
	}
}
