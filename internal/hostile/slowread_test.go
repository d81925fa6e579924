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
// answer, against SOLO_READ_MEMORY_BYTES of 16 MiB: a read holds its revision in memory until
// it is answered, so two such readers fill the budget, and the next read waits 5 s for room
// and is refused 503 unavailable with Retry-After instead of adding 8 MiB more. Once the
// slow readers go, reads are answered again, with every byte.
func TestSlowSnapshotReaders(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	env := apptest.New(t, map[string]string{"SOLO_SNAPSHOT_MAX_BYTES": "16777216", "SOLO_READ_MEMORY_BYTES": "16777216",
		"SOLO_QUOTA_BYTES": "1073741824", "API_WRITE_RATE_PER_MIN": "100000"})
	tok := env.Token("rita")
	solo := apptest.MustCreate[api.SoloSession](t, env, tok, "/api/v1/solo/sessions/", map[string]any{"title": "big"})
	scene := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(scene)
	path := "/api/v1/solo/sessions/" + solo.Id.String() + "/snapshot/"
	if res := env.Do(apptest.Request{Method: http.MethodPost, Path: path, Token: tok, Body: scene,
		Header: map[string]string{"Content-Type": "application/octet-stream"}}); res.Status != http.StatusOK && res.Status != http.StatusCreated {
		t.Fatalf("upload = %d %s", res.Status, res.Body)
	}
	latest := path + "latest/"

	slow := make([]*rawConn, 2)
	for i := range slow {
		slow[i] = dial(t, env)
		slow[i].head(http.MethodGet, latest, tok, -1)
	}
	time.Sleep(500 * time.Millisecond) // both reads have their revision in memory and block writing it

	start := time.Now()
	res := env.Do(apptest.Request{Method: http.MethodGet, Path: latest, Token: tok})
	waited := time.Since(start)
	if res.Status != http.StatusServiceUnavailable || code(res.Body) != "unavailable" || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("third read = %d %s (Retry-After %q), want 503 unavailable with Retry-After 1", res.Status, res.Body, res.Header.Get("Retry-After"))
	}
	if waited < 4*time.Second || waited > 10*time.Second {
		t.Errorf("third read refused after %v, want after about 5 s of waiting", waited)
	}

	for _, c := range slow {
		c.conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res = env.Do(apptest.Request{Method: http.MethodGet, Path: latest, Token: tok})
		if res.Status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res.Status != http.StatusOK || !bytes.Equal(res.Body, scene) {
		t.Fatalf("read after the slow readers left = %d (%d bytes), want 200 with the %d bytes", res.Status, len(res.Body), size)
	}
}
