package solo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/solo"
)

// checkStore asserts what must hold once nothing is in flight, for every user: used_bytes is
// what the rows say (live chunks plus whole-blob revisions; migration 0006), no chunk's
// reference count drifts from the references revisions hold, no upload, pending row or
// tombstone is left, every pack counts its chunk rows, the blob store holds exactly the
// packs, the chunks of their own and whole-blob revisions' blobs, and every revision reads back to its SHA-256. It returns each user's used_bytes.
func checkStore(t *testing.T, pool *pgxpool.Pool, store blob.Store, svc *solo.Service) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	var leftovers int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM snapshot_uploads) + (SELECT count(*) FROM snapshot_chunks WHERE state <> 'live') + (SELECT count(*) FROM snapshot_packs WHERE state <> 'live')
		+ (SELECT count(*) FROM solo_snapshots WHERE status = 'pending')`).Scan(&leftovers); err != nil {
		t.Fatal(err)
	}
	if leftovers != 0 {
		t.Errorf("%d uploads in flight, tombstones or pending rows left", leftovers)
	}
	rows, _ := pool.Query(ctx, `SELECT s.user_id, s.used_bytes,
		(SELECT coalesce(sum(c.stored_bytes), 0) FROM snapshot_chunks c WHERE c.user_id = s.user_id AND c.state = 'live')
		+ (SELECT coalesce(sum(n.size_bytes), 0) FROM solo_snapshots n WHERE n.user_id = s.user_id AND n.manifest IS NULL)
		FROM solo_user_storage s ORDER BY 1`)
	type usage struct {
		User         string
		Used, Actual int64
	}
	us, err := pgx.CollectRows(rows, pgx.RowToStructByPos[usage])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, u := range us {
		if u.Used != u.Actual {
			t.Errorf("user %s: used_bytes %d, rows say %d", u.User, u.Used, u.Actual)
		}
		out[u.User] = u.Used
	}
	var drift int
	if err := pool.QueryRow(ctx, `WITH refs AS (
			SELECT x AS id, count(*) AS n FROM solo_snapshots s, unnest(s.chunk_ids) x GROUP BY x)
		SELECT count(*) FROM snapshot_chunks c FULL JOIN refs ON refs.id = c.id
		WHERE coalesce(c.refcount, 0) <> coalesce(refs.n, 0)`).Scan(&drift); err != nil {
		t.Fatal(err)
	}
	if drift != 0 {
		t.Errorf("%d chunks whose refcount differs from the revisions' references", drift)
	}

	var want []string
	var badPacks int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM snapshot_packs p
		WHERE p.live_chunks <> (SELECT count(*) FROM snapshot_chunks c WHERE c.pack_id = p.id)`).Scan(&badPacks); err != nil {
		t.Fatal(err)
	}
	if badPacks != 0 {
		t.Errorf("%d packs whose live_chunks differs from their chunk rows", badPacks)
	}
	rows, _ = pool.Query(ctx, `SELECT user_id, id FROM snapshot_packs`)
	type packRow struct {
		User string
		ID   int64
	}
	ps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[packRow])
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		want = append(want, chunkstore.PackKey(p.User, p.ID))
	}
	rows, _ = pool.Query(ctx, `SELECT user_id, sha256, id FROM snapshot_chunks WHERE pack_id IS NULL`)
	type chunkRow struct {
		User string
		Sha  []byte
		ID   int64
	}
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[chunkRow])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		want = append(want, chunkstore.Key(c.User, chunkstore.Hash(c.Sha), c.ID))
	}
	rows, _ = pool.Query(ctx, `SELECT blob_key FROM solo_snapshots WHERE manifest IS NULL`)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, keys...)
	var have []string
	for obj, err := range store.List(ctx, "", time.Time{}) {
		if err != nil {
			t.Fatal(err)
		}
		have = append(have, obj.Key)
	}
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(want, have) {
		t.Errorf("blobs %v do not match rows %v", have, want)
	}

	rows, _ = pool.Query(ctx, `SELECT user_id, session_id, revision FROM solo_snapshots WHERE revision IS NOT NULL`)
	type revRow struct {
		User    string
		Session uuid.UUID
		Rev     int32
	}
	revs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[revRow])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		snap, err := svc.SnapshotGet(ctx, r.User, r.Session, r.Rev)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := svc.SnapshotOpen(ctx, snap)
		if err != nil {
			t.Errorf("opening revision %d: %v", r.Rev, err)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil || n != snap.SizeBytes || hex.EncodeToString(h.Sum(nil)) != snap.SHA256 {
			t.Errorf("revision %d reads %d bytes (%v), want %d with its SHA-256", r.Rev, n, err, snap.SizeBytes)
		}
	}
	return out
}
