package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/solo"
)

// TestGCSnapshots runs `m4sh gc snapshots` against a database holding one session of 5
// revisions and checks the printed summary, the rows, the accounting and the blobs.
func TestGCSnapshots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	dir := t.TempDir()
	store, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := dbtest.Pool(t, url)
	session := uuid.New()
	var keys []string
	for _, sql := range []string{
		`INSERT INTO users (id) VALUES ('gina')`,
		`INSERT INTO solo_user_storage (user_id, used_bytes, quota_bytes) VALUES ('gina', 0, 1000000)`,
		fmt.Sprintf(`INSERT INTO solo_sessions (id, user_id, last_revision) VALUES ('%s', 'gina', 5)`, session),
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for r := 1; r <= 5; r++ {
		id := uuid.New()
		key := fmt.Sprintf("solo/%s/%s", session, id)
		keys = append(keys, key)
		if err := store.Put(ctx, key, bytes.NewReader(make([]byte, 100*r)), int64(100*r), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO solo_snapshots (id, session_id, user_id, status, revision, size_bytes, sha256, content_type, blob_key, committed_at)
			VALUES ($1, $2, 'gina', 'committed', $3, $4, repeat('c', 64), 'application/json', $5, now());
			`, id, session, r, 100*r, key); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `UPDATE solo_user_storage SET used_bytes = used_bytes + $1 WHERE user_id = 'gina'`, 100*r); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"DATABASE_URL": url, "STORAGE_DIR": dir, "LOG_LEVEL": "error"}
	if _, err := runCmd(t, vars, "gc", "snapshots", "-keep-last", "0"); err == nil || !strings.Contains(err.Error(), "at least 1") {
		t.Errorf("gc snapshots -keep-last 0 = %v, want an error", err)
	}
	out, err := runCmd(t, vars, "gc", "snapshots", "-keep-last", "2")
	if err != nil {
		t.Fatalf("gc snapshots: %v", err)
	}
	var sum solo.CleanupSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if want := (solo.CleanupSummary{Sessions: 1, RevisionsDeleted: 3, BytesFreed: 600}); sum != want {
		t.Errorf("summary = %+v, want %+v", sum, want)
	}
	var used int64
	if err := pool.QueryRow(ctx, `SELECT used_bytes FROM solo_user_storage WHERE user_id = 'gina'`).Scan(&used); err != nil || used != 900 {
		t.Errorf("used_bytes = %d, %v; want 900", used, err)
	}
	for i, key := range keys {
		_, _, err := store.Get(ctx, key)
		if gone := errors.Is(err, blob.ErrNotFound); gone != (i < 3) {
			t.Errorf("blob of revision %d gone = %v, want %v", i+1, gone, i < 3)
		}
	}
	out, err = runCmd(t, vars, "gc", "reconcile")
	if err != nil || !strings.Contains(out, `"repaired": 0`) {
		t.Errorf("gc reconcile = %q, %v; want nothing repaired", out, err)
	}
}
