package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m4sh/backend/internal/apptest"
	"github.com/m4sh/backend/internal/solo"
)

// soloEnv is a running service with a helper for the solo routes.
type soloEnv struct {
	*apptest.Env
}

func setupSolo(t *testing.T, vars map[string]string) soloEnv {
	t.Helper()
	return soloEnv{apptest.New(t, vars)}
}

// session creates a solo session for the token's user and returns its id.
func (e soloEnv) session(t testing.TB, tok string) string {
	t.Helper()
	r := e.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/", Token: tok, Body: map[string]any{"title": "scene"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("creating a session = %d: %s", r.Status, r.Body)
	}
	return r.JSON(t)["id"].(string)
}

// upload posts body as a snapshot of session sid.
func (e soloEnv) upload(t *testing.T, tok, sid string, body []byte, header map[string]string) apptest.Response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/octet-stream"}
	for k, v := range header {
		h[k] = v
	}
	return e.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/" + sid + "/snapshot/", Token: tok, Body: body, Header: h})
}

func (e soloEnv) storage(t *testing.T, tok string) map[string]any {
	t.Helper()
	r := e.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/solo/storage/", Token: tok})
	if r.Status != http.StatusOK {
		t.Fatalf("GET storage = %d: %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

// assertInvariant checks the quota invariant for user: used_bytes equals the stored size of
// the user's live chunks (plus whole-blob revisions from before chunking), no chunk's
// reference count drifts, and nothing is in flight.
func (e soloEnv) assertInvariant(t *testing.T, user string, wantUsed int64) {
	t.Helper()
	var used, actual, inFlight, drift int64
	err := e.Pool.QueryRow(context.Background(), `
		SELECT COALESCE((SELECT used_bytes FROM solo_user_storage WHERE user_id = $1), 0),
		       COALESCE((SELECT SUM(stored_bytes) FROM snapshot_chunks WHERE user_id = $1 AND state = 'live'), 0)
		         + COALESCE((SELECT SUM(size_bytes) FROM solo_snapshots WHERE user_id = $1 AND manifest IS NULL), 0),
		       (SELECT count(*) FROM solo_snapshots WHERE user_id = $1 AND status = 'pending')
		         + (SELECT count(*) FROM snapshot_uploads WHERE user_id = $1),
		       (SELECT count(*) FROM snapshot_chunks c WHERE c.user_id = $1 AND c.refcount <>
		         (SELECT count(*) FROM solo_snapshots s WHERE c.id = ANY(s.chunk_ids)))`, user).Scan(&used, &actual, &inFlight, &drift)
	if err != nil {
		t.Fatal(err)
	}
	if used != actual || used != wantUsed || inFlight != 0 || drift != 0 {
		t.Errorf("user %s: used_bytes = %d, rows say %d, in flight %d, refcount drift %d; want %d, %d, 0, 0", user, used, actual, inFlight, drift, wantUsed, wantUsed)
	}
}

// noise is n incompressible bytes (the same for the same seed): such a body, sharing nothing,
// costs exactly its size.
func noise(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1}).Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func TestSoloSessions(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, nil)
	alice, bob := env.Token("alice"), env.Token("bob")
	var ids []string
	for i := range 3 {
		r := env.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/", Token: alice, Body: map[string]any{"title": fmt.Sprintf("s%d", i)}})
		if r.Status != http.StatusCreated {
			t.Fatalf("create = %d: %s", r.Status, r.Body)
		}
		s := r.JSON(t)
		if s["title"] != fmt.Sprintf("s%d", i) || s["created_at"] == nil {
			t.Errorf("created session = %v", s)
		}
		ids = append(ids, s["id"].(string))
	}
	if r := env.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/", Token: alice, Body: map[string]any{}}); r.Status != http.StatusCreated || r.JSON(t)["title"] != "" {
		t.Errorf("create without title = %d %s, want 201 with an empty title", r.Status, r.Body)
	}
	env.session(t, bob)

	// Pages of two, newest first, only alice's own.
	var got []string
	cursor := ""
	for range 3 {
		path := "/api/v1/solo/sessions/?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := env.Do(apptest.Request{Method: http.MethodGet, Path: path, Token: alice})
		if r.Status != http.StatusOK {
			t.Fatalf("list = %d: %s", r.Status, r.Body)
		}
		var pg struct {
			Items []struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		r.Decode(t, &pg)
		for _, it := range pg.Items {
			got = append(got, it.Title)
		}
		if cursor = pg.NextCursor; cursor == "" {
			break
		}
	}
	if want := []string{"", "s2", "s1", "s0"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alice's sessions = %q, want %q", got, want)
	}

	r := env.Do(apptest.Request{Method: http.MethodGet, Path: "/api/v1/solo/sessions/" + ids[0] + "/", Token: alice})
	if r.Status != http.StatusOK || r.JSON(t)["id"] != ids[0] {
		t.Errorf("get own session = %d %s", r.Status, r.Body)
	}
	tests := []struct {
		name   string
		req    apptest.Request
		status int
		code   string
	}{
		{"title too long", apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/", Body: map[string]any{"title": string(bytes.Repeat([]byte("x"), 201))}}, 400, "validation_error"},
		{"unknown field", apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/", Body: map[string]any{"name": "x"}}, 400, "validation_error"},
		{"malformed id", apptest.Request{Method: http.MethodGet, Path: "/api/v1/solo/sessions/not-a-uuid/"}, 400, "validation_error"},
		{"unknown id", apptest.Request{Method: http.MethodGet, Path: "/api/v1/solo/sessions/00000000-0000-0000-0000-000000000001/"}, 404, "not_found"},
		{"bad cursor", apptest.Request{Method: http.MethodGet, Path: "/api/v1/solo/sessions/?cursor=abc"}, 400, "validation_error"},
		{"no token", apptest.Request{Method: http.MethodGet, Path: "/api/v1/solo/sessions/", NoAuth: true}, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			if !req.NoAuth {
				req.Token = alice
			}
			assertProblem(t, env.Do(req), tt.status, tt.code)
		})
	}
}

func TestSoloSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, nil)
	tok := env.Token("alice")
	sid := env.session(t, tok)
	base := "/api/v1/solo/sessions/" + sid

	assertProblem(t, env.Do(apptest.Request{Method: http.MethodGet, Path: base + "/snapshot/latest/", Token: tok}), 404, "not_found")

	v1 := []byte{0x00, 0xff, 0x10, 0x80, 'c', 'r', 'd', 't'}
	v2 := []byte(`{"shapes":[{"kind":"rect","x":1}]}`)
	r := env.upload(t, tok, sid, v1, map[string]string{"Content-Type": "application/x-crdt-update"})
	if r.Status != http.StatusCreated {
		t.Fatalf("upload v1 = %d: %s", r.Status, r.Body)
	}
	got := r.JSON(t)
	if got["revision"] != 1.0 || got["session_id"] != sid || num(got["size_bytes"]) != int64(len(v1)) ||
		got["sha256"] != sha(v1) || got["content_type"] != "application/x-crdt-update" {
		t.Errorf("created = %v", got)
	}
	if st := got["storage"].(map[string]any); num(st["used"]) != 8 || num(st["quota"]) != 100<<20 || num(st["remaining"]) != 100<<20-8 {
		t.Errorf("storage after v1 = %v", st)
	}
	r = env.upload(t, tok, sid, v2, map[string]string{"Content-Type": "application/json; charset=utf-8"})
	if r.Status != http.StatusCreated || r.JSON(t)["revision"] != 2.0 {
		t.Fatalf("upload v2 = %d: %s", r.Status, r.Body)
	}

	reads := []struct {
		path, ifNoneMatch string
		status            int
		body              []byte
		contentType       string
		revision          string
	}{
		{"/snapshot/latest/", "", 200, v2, "application/json; charset=utf-8", "2"},
		{"/snapshot/latest/", `"` + sha(v2) + `"`, 304, nil, "", "2"},
		{"/snapshot/latest/", `W/"x", W/"` + sha(v2) + `"`, 304, nil, "", "2"},
		{"/snapshot/latest/", `"` + sha(v1) + `"`, 200, v2, "application/json; charset=utf-8", "2"},
		{"/snapshots/1/", "", 200, v1, "application/x-crdt-update", "1"},
		{"/snapshots/1/", `"` + sha(v1) + `"`, 304, nil, "", "1"},
		{"/snapshots/2/", "", 200, v2, "application/json; charset=utf-8", "2"},
	}
	for _, rd := range reads {
		h := map[string]string{}
		if rd.ifNoneMatch != "" {
			h["If-None-Match"] = rd.ifNoneMatch
		}
		r := env.Do(apptest.Request{Method: http.MethodGet, Path: base + rd.path, Token: tok, Header: h})
		if r.Status != rd.status || !bytes.Equal(r.Body, rd.body) {
			t.Errorf("GET %s (If-None-Match %s) = %d %q, want %d %q", rd.path, rd.ifNoneMatch, r.Status, r.Body, rd.status, rd.body)
			continue
		}
		if rd.status == 200 && r.Header.Get("Content-Type") != rd.contentType {
			t.Errorf("GET %s Content-Type = %q, want %q", rd.path, r.Header.Get("Content-Type"), rd.contentType)
		}
		wantETag := `"` + sha(v2) + `"`
		if rd.revision == "1" {
			wantETag = `"` + sha(v1) + `"`
		}
		if r.Header.Get("ETag") != wantETag || r.Header.Get("X-Snapshot-Revision") != rd.revision {
			t.Errorf("GET %s ETag = %q, X-Snapshot-Revision = %q; want %q, %s", rd.path, r.Header.Get("ETag"), r.Header.Get("X-Snapshot-Revision"), wantETag, rd.revision)
		}
	}
	assertProblem(t, env.Do(apptest.Request{Method: http.MethodGet, Path: base + "/snapshots/3/", Token: tok}), 404, "not_found")
	assertProblem(t, env.Do(apptest.Request{Method: http.MethodGet, Path: base + "/snapshots/0/", Token: tok}), 400, "validation_error")

	// Revisions, newest first, one per page.
	var revs []int64
	cursor := ""
	for range 3 {
		path := base + "/snapshots/?limit=1"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := env.Do(apptest.Request{Method: http.MethodGet, Path: path, Token: tok})
		if r.Status != http.StatusOK {
			t.Fatalf("list = %d: %s", r.Status, r.Body)
		}
		var pg struct {
			Items []struct {
				Revision  int64  `json:"revision"`
				SizeBytes int64  `json:"size_bytes"`
				SHA256    string `json:"sha256"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		r.Decode(t, &pg)
		for _, it := range pg.Items {
			revs = append(revs, it.Revision)
		}
		if cursor = pg.NextCursor; cursor == "" {
			break
		}
	}
	if fmt.Sprint(revs) != "[2 1]" {
		t.Errorf("revisions = %v, want [2 1]", revs)
	}
	env.assertInvariant(t, "alice", int64(len(v1)+len(v2)))
}

func TestSoloSnapshotDefaultContentType(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, nil)
	tok := env.Token("alice")
	sid := env.session(t, tok)
	// apptest sets no Content-Type for []byte bodies unless asked.
	r := env.Do(apptest.Request{Method: http.MethodPost, Path: "/api/v1/solo/sessions/" + sid + "/snapshot/", Token: tok, Body: []byte("raw")})
	if r.Status != http.StatusCreated || r.JSON(t)["content_type"] != "application/octet-stream" {
		t.Errorf("upload without Content-Type = %d %s, want 201 application/octet-stream", r.Status, r.Body)
	}
}

func TestSoloSnapshotLimits(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, map[string]string{"SOLO_SNAPSHOT_MAX_BYTES": "1000", "SOLO_QUOTA_BYTES": "2500"})
	tok := env.Token("alice")
	sid := env.session(t, tok)
	if r := env.upload(t, tok, sid, noise(1, 1000), nil); r.Status != http.StatusCreated {
		t.Fatalf("upload at the size limit = %d: %s", r.Status, r.Body)
	}
	if r := env.upload(t, tok, sid, noise(2, 1000), nil); r.Status != http.StatusCreated {
		t.Fatalf("second upload = %d: %s", r.Status, r.Body)
	}
	tests := []struct {
		name   string
		body   []byte
		header map[string]string
		status int
		code   string
	}{
		{"empty", []byte{}, nil, 400, "validation_error"},
		{"one byte over the limit", bytes.Repeat([]byte("c"), 1001), nil, 413, "payload_too_large"},
		{"bad content type", []byte("x"), map[string]string{"Content-Type": "not a type"}, 400, "validation_error"},
		{"idempotency key too long", []byte("x"), map[string]string{"Idempotency-Key": string(bytes.Repeat([]byte("k"), 256))}, 400, "validation_error"},
		{"over quota", noise(4, 501), nil, 403, "quota_exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.upload(t, tok, sid, tt.body, tt.header)
			assertProblem(t, r, tt.status, tt.code)
			if tt.code == "quota_exceeded" {
				p := r.JSON(t)
				if num(p["used"]) != 2000 || num(p["quota"]) != 2500 || num(p["remaining"]) != 500 {
					t.Errorf("quota problem = %v, want used 2000, quota 2500, remaining 500", p)
				}
			}
		})
	}
	if r := env.upload(t, tok, sid, noise(5, 500), nil); r.Status != http.StatusCreated {
		t.Errorf("upload of exactly the remaining bytes = %d: %s", r.Status, r.Body)
	}
	if st := env.storage(t, tok); num(st["used"]) != 2500 || num(st["remaining"]) != 0 {
		t.Errorf("storage = %v, want used 2500, remaining 0", st)
	}
	env.assertInvariant(t, "alice", 2500)
}

// TestSoloSnapshotRejectsBeforeReading sends a Content-Length that is too large for the size
// limit, or any upload once the quota is used up, and never sends the body: the answer must
// come anyway, from the header alone (what an upload adds is known only after chunking, so
// a quota with room left reads the body). A chunked body over the limit is cut off at the
// limit.
func TestSoloSnapshotRejectsBeforeReading(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, map[string]string{"SOLO_SNAPSHOT_MAX_BYTES": "4096", "SOLO_QUOTA_BYTES": "3000"})
	tok := env.Token("alice")
	sid := env.session(t, tok)
	if r := env.upload(t, tok, sid, noise(9, 3000), nil); r.Status != http.StatusCreated {
		t.Fatalf("upload of the whole quota = %d: %s", r.Status, r.Body)
	}
	tests := []struct {
		name          string
		contentLength int64
		status        int
		code          string
	}{
		{"over the size limit", 1 << 30, 413, "payload_too_large"},
		{"quota used up", 1, 403, "quota_exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Raw HTTP/1.1: the headers promise a body that never comes.
			conn, err := net.Dial("tcp", env.Server.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(conn, "POST /api/v1/solo/sessions/%s/snapshot/ HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
				"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", sid, tok, tt.contentLength)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer without the body: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assertProblem(t, apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, tt.status, tt.code)
		})
	}
	t.Run("chunked over the size limit", func(t *testing.T) {
		// Another user, whose quota has room: the size limit alone refuses it.
		tok, sid := env.Token("bob"), env.session(t, env.Token("bob"))
		// A chunked body of 1 MiB and more, written on a raw connection while the answer is
		// read: the server stops reading at the limit, answers and closes, so the rest of the
		// body may meet a reset — which must not cost the client the answer (with
		// net/http's client, a write failing first races the reading of the response).
		conn, err := net.Dial("tcp", env.Server.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "POST /api/v1/solo/sessions/%s/snapshot/ HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n", sid, tok)
		var sent atomic.Int64
		go func() {
			chunk := fmt.Sprintf("%x\r\n%s\r\n", 32<<10, strings.Repeat("z", 32<<10))
			for sent.Load() <= 1<<20 {
				if _, err := io.WriteString(conn, chunk); err != nil {
					return // the server closed after answering
				}
				sent.Add(32 << 10)
			}
			_, _ = io.WriteString(conn, "0\r\n\r\n")
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer (%d body bytes sent): %v", sent.Load(), err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assertProblem(t, apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, 413, "payload_too_large")
	})
	env.assertInvariant(t, "alice", 3000)
}

// TestSoloQuotaEdgeConcurrent: 50 different snapshots race for a quota that holds exactly k
// of them. Exactly k are stored, every other upload is refused with the numbers at that
// moment, revisions are 1..k without gaps, and used_bytes is the sum of stored sizes.
func TestSoloQuotaEdgeConcurrent(t *testing.T) {
	t.Parallel()
	const n, size, k = 50, 1000, 17
	env := setupSolo(t, map[string]string{"SOLO_QUOTA_BYTES": strconv.Itoa(k*size + size - 1), "SOLO_UPLOADS_IN_FLIGHT": strconv.Itoa(n)})
	tok := env.Token("alice")
	sid := env.session(t, tok)
	var wg sync.WaitGroup
	resps := make([]apptest.Response, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := noise(uint64(100+i), size)
			resps[i] = env.upload(t, tok, sid, body, nil)
		}()
	}
	wg.Wait()
	created, refused := 0, 0
	revs := map[float64]bool{}
	for _, r := range resps {
		switch r.Status {
		case http.StatusCreated:
			created++
			revs[r.JSON(t)["revision"].(float64)] = true
		case http.StatusForbidden:
			refused++
			assertProblem(t, r, 403, "quota_exceeded")
			p := r.JSON(t)
			used, quota, remaining := num(p["used"]), num(p["quota"]), num(p["remaining"])
			if quota != k*size+size-1 || used+remaining != quota || remaining >= size || used%size != 0 {
				t.Errorf("refusal numbers used %d, quota %d, remaining %d are inconsistent", used, quota, remaining)
			}
		default:
			t.Errorf("upload = %d: %s", r.Status, r.Body)
		}
	}
	if created != k || refused != n-k {
		t.Errorf("created %d, refused %d; want %d, %d", created, refused, k, n-k)
	}
	for rev := 1; rev <= k; rev++ {
		if !revs[float64(rev)] {
			t.Errorf("revision %d missing: revisions %v are not 1..%d", rev, revs, k)
		}
	}
	env.assertInvariant(t, "alice", k*size)
}

func TestSoloIdempotency(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, nil)
	tok := env.Token("alice")
	s1, s2 := env.session(t, tok), env.session(t, tok)
	a, b := []byte("version a"), []byte("version b")
	key := map[string]string{"Idempotency-Key": "save-1"}

	first := env.upload(t, tok, s1, a, key)
	if first.Status != http.StatusCreated {
		t.Fatalf("first upload = %d: %s", first.Status, first.Body)
	}
	id := first.JSON(t)["id"]
	replay := env.upload(t, tok, s1, a, key)
	if replay.Status != http.StatusOK || replay.JSON(t)["id"] != id || replay.JSON(t)["revision"] != 1.0 {
		t.Errorf("replay = %d %s, want 200 with the first revision", replay.Status, replay.Body)
	}
	if st := replay.JSON(t)["storage"].(map[string]any); num(st["used"]) != int64(len(a)) {
		t.Errorf("storage after replay = %v, want used %d", st, len(a))
	}
	assertProblem(t, env.upload(t, tok, s1, b, key), 409, "conflict")

	// The same key in another session is another upload.
	if r := env.upload(t, tok, s2, a, key); r.Status != http.StatusCreated {
		t.Errorf("same key, other session = %d: %s", r.Status, r.Body)
	}
	// A body identical to the newest revision, without a key: nothing new.
	same := env.upload(t, tok, s1, a, nil)
	if same.Status != http.StatusOK || same.JSON(t)["id"] != id {
		t.Errorf("identical body = %d %s, want 200 with revision 1", same.Status, same.Body)
	}
	// ... with a new key: nothing new, and the key now answers with that revision even after
	// a newer revision exists.
	if r := env.upload(t, tok, s1, a, map[string]string{"Idempotency-Key": "save-2"}); r.Status != http.StatusOK || r.JSON(t)["id"] != id {
		t.Errorf("identical body, new key = %d %s, want 200 with revision 1", r.Status, r.Body)
	}
	if r := env.upload(t, tok, s1, b, nil); r.Status != http.StatusCreated || r.JSON(t)["revision"] != 2.0 {
		t.Fatalf("upload b = %d: %s", r.Status, r.Body)
	}
	if r := env.upload(t, tok, s1, a, map[string]string{"Idempotency-Key": "save-2"}); r.Status != http.StatusOK || r.JSON(t)["id"] != id {
		t.Errorf("replay of save-2 = %d %s, want 200 with revision 1", r.Status, r.Body)
	}
	// A body identical to an older revision (not the newest) is a new revision.
	if r := env.upload(t, tok, s1, a, nil); r.Status != http.StatusCreated || r.JSON(t)["revision"] != 3.0 {
		t.Errorf("reverting to a = %d %s, want 201 revision 3", r.Status, r.Body)
	}
	env.assertInvariant(t, "alice", int64(len(a)+len(b))) // a is stored once
}

// TestSoloIdempotencyConcurrent: many copies of one request race. With a key, one creates
// and the others replay (200) or find it in flight (409); without a key, identical bodies
// dedupe. Either way exactly one revision is stored and charged.
func TestSoloIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, map[string]string{"SOLO_UPLOADS_IN_FLIGHT": "20"})
	tok := env.Token("alice")
	for _, withKey := range []bool{true, false} {
		t.Run(fmt.Sprintf("key=%t", withKey), func(t *testing.T) {
			sid := env.session(t, tok)
			body := []byte("same bytes for session " + sid)
			var header map[string]string
			if withKey {
				header = map[string]string{"Idempotency-Key": "k-" + sid}
			}
			const n = 20
			var wg sync.WaitGroup
			statuses := make([]int, n)
			ids := make([]any, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := env.upload(t, tok, sid, body, header)
					statuses[i] = r.Status
					if r.Status < 300 {
						ids[i] = r.JSON(t)["id"]
					}
				}()
			}
			wg.Wait()
			created := 0
			for i, st := range statuses {
				switch {
				case st == http.StatusCreated:
					created++
				case st == http.StatusOK:
				case st == http.StatusConflict && withKey:
				default:
					t.Errorf("upload %d = %d", i, st)
				}
				if ids[i] != nil && ids[i] != ids[slicesIndex(statuses, http.StatusCreated)] {
					t.Errorf("upload %d answered with revision %v, not the created one", i, ids[i])
				}
			}
			if created != 1 {
				t.Errorf("%d uploads created a revision, want 1 (statuses %v)", created, statuses)
			}
			var revisions int
			if err := env.Pool.QueryRow(context.Background(), "SELECT count(*) FROM solo_snapshots WHERE session_id = $1", sid).Scan(&revisions); err != nil || revisions != 1 {
				t.Errorf("stored revisions = %d, %v; want 1", revisions, err)
			}
		})
	}
}

func slicesIndex(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return 0
}

// TestSoloStrangers: every solo route answers 404 for another user's session, exactly as for
// a session that does not exist, and charges no one.
func TestSoloStrangers(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, nil)
	alice, mallory := env.Token("alice"), env.Token("mallory")
	sid := env.session(t, alice)
	if r := env.upload(t, alice, sid, []byte("secret"), nil); r.Status != http.StatusCreated {
		t.Fatalf("upload = %d", r.Status)
	}
	missing := "00000000-0000-0000-0000-00000000abcd"
	for _, id := range []string{sid, missing} {
		base := "/api/v1/solo/sessions/" + id
		reqs := []apptest.Request{
			{Method: http.MethodGet, Path: base + "/"},
			{Method: http.MethodPost, Path: base + "/snapshot/", Body: []byte("mine now"), Header: map[string]string{"Content-Type": "text/plain", "Idempotency-Key": "x"}},
			{Method: http.MethodGet, Path: base + "/snapshot/latest/"},
			{Method: http.MethodGet, Path: base + "/snapshots/"},
			{Method: http.MethodGet, Path: base + "/snapshots/1/"},
		}
		for _, req := range reqs {
			req.Token = mallory
			r := env.Do(req)
			assertProblem(t, r, 404, "not_found")
			if d := r.JSON(t)["detail"]; d != "solo session not found" {
				t.Errorf("%s %s detail = %q, want the same as for a missing session", req.Method, req.Path, d)
			}
		}
	}
	if st := env.storage(t, mallory); num(st["used"]) != 0 {
		t.Errorf("mallory charged: %v", st)
	}
	env.assertInvariant(t, "alice", 6)
	env.assertInvariant(t, "mallory", 0)
}

func TestSoloStorageDefault(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, map[string]string{"SOLO_QUOTA_BYTES": "12345"})
	st := env.storage(t, env.Token("newbie"))
	if num(st["used"]) != 0 || num(st["quota"]) != 12345 || num(st["remaining"]) != 12345 {
		t.Errorf("storage of a new user = %v", st)
	}
}

// TestSoloReaperJob runs the reaper through River as the service schedules it: an upload left
// pending by a crash (seeded: bytes reserved, row pending, no blob) is rolled back.
func TestSoloReaperJob(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, nil)
	tok := env.Token("alice")
	sid := env.session(t, tok)
	ctx := context.Background()
	if _, err := env.Pool.Exec(ctx, `
		INSERT INTO solo_user_storage (user_id, used_bytes, quota_bytes) VALUES ('alice', 42, 1000);
		INSERT INTO solo_snapshots (id, session_id, user_id, status, size_bytes, sha256, content_type, blob_key, created_at)
		VALUES (gen_random_uuid(), '`+sid+`', 'alice', 'pending', 42, repeat('a', 64), 'text/plain', 'solo/`+sid+`/lost', now() - interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	grace := 60
	if _, err := env.App.River.Insert(ctx, solo.ReapArgs{GraceSeconds: &grace}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var pending int
		if err := env.Pool.QueryRow(ctx, "SELECT count(*) FROM solo_snapshots WHERE status = 'pending'").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reaper job did not roll back the pending upload within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	env.assertInvariant(t, "alice", 0)
}

// TestSoloUploadsInFlight: with SOLO_UPLOADS_IN_FLIGHT=1, an upload whose body is still
// arriving holds the user's one slot; another upload is answered 429 too_many_uploads with
// Retry-After and Connection: close before any of its body is sent, and the first upload
// completes.
func TestSoloUploadsInFlight(t *testing.T) {
	t.Parallel()
	env := setupSolo(t, map[string]string{"SOLO_UPLOADS_IN_FLIGHT": "1"})
	tok := env.Token("alice")
	sid := env.session(t, tok)
	addr := strings.TrimPrefix(env.Server.URL, "http://")
	send := func(length int, body string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "POST /api/v1/solo/sessions/%s/snapshot/ HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", sid, addr, tok, length, body)
		return c, bufio.NewReader(c)
	}
	first, firstR := send(20, "0123456789") // half its body: in flight
	// Wait until the first upload holds the slot: an empty upload is 400 while the slot is
	// free (and frees it at once), 429 once it is taken.
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, r := send(0, "")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first upload never held its slot (last probe %d)", resp.StatusCode)
		}
		// A probe can take the one slot just as the first upload asks for it: then the
		// first was refused with 429 and is sent again.
		_ = first.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := firstR.Peek(1); err == nil {
			first, firstR = send(20, "0123456789")
		}
		_ = first.SetReadDeadline(time.Now().Add(30 * time.Second))
	}
	_, r := send(20, "") // headers only: its body is never sent
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	assertProblem(t, apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, 429, "too_many_uploads")
	if resp.Header.Get("Retry-After") != "1" || !resp.Close {
		t.Errorf("Retry-After %q, Connection: close %t; want 1, true", resp.Header.Get("Retry-After"), resp.Close)
	}
	if _, err := first.Write([]byte("abcdefghij")); err != nil {
		t.Fatal(err)
	}
	done, err := http.ReadResponse(firstR, nil)
	if err != nil || done.StatusCode != http.StatusCreated {
		t.Fatalf("first upload = %v, %v; want 201", done, err)
	}
	env.assertInvariant(t, "alice", 20)
}
