package chunkstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/dbtest"
	"github.com/m4sh/backend/internal/postgres"
)

// These tests drive queries/chunks.sql through the transactions the package doc lays out,
// against a real PostgreSQL: chunkedUpload below is the reference the lifecycle code
// follows (without its River outbox: blobs to delete are returned instead).

type dbBundle struct {
	*testBundle
	pool *pgxpool.Pool
	q    *db.Queries
}

func setupDB(t *testing.T, users ...string) *dbBundle {
	t.Helper()
	b := &dbBundle{testBundle: setup(t), pool: dbtest.New(t)}
	b.q = db.New(b.pool)
	for _, u := range users {
		if _, err := b.pool.Exec(context.Background(), `INSERT INTO users (id, name) VALUES ($1, $1)`, u); err != nil {
			t.Fatal(err)
		}
		if err := b.q.QuotaEnsure(context.Background(), db.QuotaEnsureParams{UserID: u, QuotaBytes: 100 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (b *dbBundle) session(t *testing.T, user string) uuid.UUID {
	t.Helper()
	s, err := b.q.SoloSessionCreate(context.Background(), db.SoloSessionCreateParams{UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

type uploadResult struct {
	snap     db.SoloSnapshot
	dup      bool
	orphans  []string // blobs written for nothing (another upload won), for the deletion queue
	manifest Manifest
}

// chunkedUpload stores body as a revision of session: T0, then per batch Ti (reference what
// the owner has, reserve the rest), blob writes, Ci (insert, settle), then Tc (number and
// commit). See the package doc.
func (b *dbBundle) chunkedUpload(t *testing.T, user string, session uuid.UUID, body []byte) uploadResult {
	t.Helper()
	ctx := context.Background()
	id := uuid.New()
	if _, err := b.q.SnapshotUploadCreate(ctx, db.SnapshotUploadCreateParams{ID: id, SessionID: session, UserID: user}); err != nil {
		t.Fatal(err)
	}
	var res uploadResult
	refOf := map[Hash]Ref{} // chunks this upload already references
	var order []Hash
	var batch []Chunk
	var batchStored int64
	flush := func() error {
		var hashes [][]byte
		for _, c := range batch {
			if _, ok := refOf[c.Ref.Hash]; !ok && !slices.ContainsFunc(hashes, func(h []byte) bool { return bytes.Equal(h, c.Ref.Hash[:]) }) {
				hashes = append(hashes, bytes.Clone(c.Ref.Hash[:]))
			}
		}
		var fresh []Chunk // to write, with the ids reserved for them
		var ids []int64
		var reserved int64
		err := postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error {
			q := b.q.WithTx(tx)
			if _, err := q.SnapshotUploadLock(ctx, id); err != nil {
				return err
			}
			live, err := q.ChunkReferenceLive(ctx, db.ChunkReferenceLiveParams{UserID: user, Hashes: hashes})
			if err != nil {
				return err
			}
			var liveIDs []int64
			for _, r := range live {
				refOf[Hash(r.Sha256)] = refFromRow(r.ID, r.Sha256, r.SizeBytes, r.StoredBytes, r.Encoding)
				liveIDs = append(liveIDs, r.ID)
			}
			if err := q.SnapshotUploadAddRefs(ctx, db.SnapshotUploadAddRefsParams{ID: id, ChunkIds: liveIDs}); err != nil {
				return err
			}
			fresh, reserved = fresh[:0], 0
			for _, c := range batch {
				if _, ok := refOf[c.Ref.Hash]; !ok && !slices.ContainsFunc(fresh, func(f Chunk) bool { return f.Ref.Hash == c.Ref.Hash }) {
					fresh = append(fresh, c)
					reserved += c.Ref.StoredSize
				}
			}
			if len(fresh) == 0 {
				return nil
			}
			row, err := q.SnapshotUploadReserve(ctx, db.SnapshotUploadReserveParams{UploadID: id, UserID: user, Bytes: reserved, N: int32(len(fresh))})
			ids = row.ChunkIds
			return err
		})
		if err != nil || len(fresh) == 0 {
			return err
		}
		for i := range fresh {
			if err := b.store.Put(ctx, user, ids[i], &fresh[i]); err != nil {
				return err
			}
		}
		return postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error {
			q := b.q.WithTx(tx)
			if _, err := q.SnapshotUploadLock(ctx, id); err != nil {
				return err
			}
			p := db.ChunkInsertParams{UserID: user}
			var hs [][]byte
			for _, c := range fresh {
				hs = append(hs, bytes.Clone(c.Ref.Hash[:]))
			}
			live, err := q.ChunkReferenceLive(ctx, db.ChunkReferenceLiveParams{UserID: user, Hashes: hs})
			if err != nil {
				return err
			}
			var refIDs []int64
			for _, r := range live {
				refOf[Hash(r.Sha256)] = refFromRow(r.ID, r.Sha256, r.SizeBytes, r.StoredBytes, r.Encoding)
				refIDs = append(refIDs, r.ID)
			}
			proposed := map[Hash]int64{}
			for i, c := range fresh {
				proposed[c.Ref.Hash] = ids[i]
				if _, ok := refOf[c.Ref.Hash]; ok {
					res.orphans = append(res.orphans, Key(user, c.Ref.Hash, ids[i]))
					continue
				}
				p.ChunkIds = append(p.ChunkIds, ids[i])
				p.Hashes = append(p.Hashes, bytes.Clone(c.Ref.Hash[:]))
				p.Sizes = append(p.Sizes, int32(c.Ref.Size))
				p.Stored = append(p.Stored, int32(c.Ref.StoredSize))
				p.Encodings = append(p.Encodings, int16(c.Ref.Encoding))
			}
			rows, err := q.ChunkInsert(ctx, p)
			if err != nil {
				return err
			}
			var added int64
			for _, r := range rows {
				h := Hash(r.Sha256)
				refOf[h] = refFromRow(r.ID, r.Sha256, r.SizeBytes, r.StoredBytes, r.Encoding)
				refIDs = append(refIDs, r.ID)
				if r.ID == proposed[h] {
					added += int64(r.StoredBytes)
				} else {
					res.orphans = append(res.orphans, Key(user, h, proposed[h]))
				}
			}
			_, err = q.SnapshotUploadSettle(ctx, db.SnapshotUploadSettleParams{
				UploadID: id, UserID: user, Reserved: reserved, Added: added, Unused: reserved - added, ChunkIds: refIDs,
			})
			return err
		})
	}
	sum, err := b.codec.Split(bytes.NewReader(body), func(c *Chunk) error {
		order = append(order, c.Ref.Hash)
		batch = append(batch, Chunk{Ref: c.Ref, Data: bytes.Clone(c.Data), Stored: bytes.Clone(c.Stored)})
		if batchStored += c.Ref.StoredSize; batchStored >= 1<<20 {
			if err := flush(); err != nil {
				return err
			}
			batch, batchStored = batch[:0], 0
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	for _, h := range order {
		res.manifest.Refs = append(res.manifest.Refs, refOf[h])
	}
	enc, _ := res.manifest.MarshalBinary()
	sha := hex.EncodeToString(sum.SHA256[:])
	err = postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error {
		q := b.q.WithTx(tx)
		if _, err := q.SnapshotUploadLock(ctx, id); err != nil {
			return err
		}
		rev, err := q.SessionRevisionNext(ctx, db.SessionRevisionNextParams{ID: session, Sha256: sha})
		if errors.Is(err, pgx.ErrNoRows) {
			res.dup = true
			_, err := b.drop(ctx, q, id)
			return err
		}
		if err != nil {
			return err
		}
		res.snap, err = q.SnapshotUploadCommit(ctx, db.SnapshotUploadCommitParams{
			UploadID: id, Revision: rev, SizeBytes: sum.Size, Sha256: sha, ContentType: "application/json",
			BlobKey: "solo/" + session.String() + "/" + id.String(), Manifest: enc,
		})
		return err
	})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return res
}

// drop undoes an upload in flight (the reaper's and the failure path's transaction body),
// returning the blob keys to queue for deletion.
func (b *dbBundle) drop(ctx context.Context, q *db.Queries, id uuid.UUID) ([]string, error) {
	up, err := q.SnapshotUploadDelete(ctx, id)
	if err != nil {
		return nil, err
	}
	return release(ctx, q, up.UserID, up.ChunkIds, up.ReservedBytes)
}

// release drops references and gives back the bytes of the chunks freed and extra.
func release(ctx context.Context, q *db.Queries, user string, ids []int64, extra int64) ([]string, error) {
	freed, err := q.ChunkRelease(ctx, ids)
	if err != nil {
		return nil, err
	}
	var keys []string
	bytesFreed := extra
	for _, f := range freed {
		bytesFreed += int64(f.StoredBytes)
		keys = append(keys, Key(f.UserID, Hash(f.Sha256), f.ID))
	}
	if bytesFreed > 0 {
		if err := q.QuotaRelease(ctx, db.QuotaReleaseParams{UserID: user, SizeBytes: bytesFreed}); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func refFromRow(id int64, sha []byte, size, stored int32, enc int16) Ref {
	return Ref{Hash: Hash(sha), ChunkID: id, Size: int64(size), StoredSize: int64(stored), Encoding: Encoding(enc)}
}

// checkInvariant: used_bytes is what the rows say, and no refcount drifts.
func (b *dbBundle) checkInvariant(t *testing.T, user string) int64 {
	t.Helper()
	ctx := context.Background()
	st, err := b.q.QuotaGet(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	actual, err := b.q.ChunkUsageActual(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	drift, err := b.q.ChunkRefcountDrift(ctx, db.ChunkRefcountDriftParams{UserID: user, Lim: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if st.UsedBytes != actual || len(drift) != 0 {
		t.Fatalf("%s: used_bytes %d, rows say %d; refcount drift %+v", user, st.UsedBytes, actual, drift)
	}
	return st.UsedBytes
}

// TestQueriesUploadDedupRelease: a user's autosaves share chunks across revisions and
// sessions and are charged for what they add; another user's identical upload shares
// nothing; dropping a revision frees exactly the chunks no other revision uses; the
// accounting invariant holds after every step.
func TestQueriesUploadDedupRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDB(t, "alice", "bob")
	revs := autosaves(50, 3)
	s1, s2 := b.session(t, "alice"), b.session(t, "alice")

	r1 := b.chunkedUpload(t, "alice", s1, revs[0])
	used1 := b.checkInvariant(t, "alice")
	if r1.snap.Revision.Int32 != 1 || r1.snap.StoredBytes.Int64 != used1 || used1 == 0 || used1 >= int64(len(revs[0])) {
		t.Fatalf("first upload: revision %d, stored %d, used %d", r1.snap.Revision.Int32, r1.snap.StoredBytes.Int64, used1)
	}
	r2 := b.chunkedUpload(t, "alice", s1, revs[1])
	used2 := b.checkInvariant(t, "alice")
	if added := r2.snap.StoredBytes.Int64; added != used2-used1 || added == 0 || added > used1/4 {
		t.Fatalf("second autosave added %d (used %d -> %d)", added, used1, used2)
	}
	if dup := b.chunkedUpload(t, "alice", s1, revs[1]); !dup.dup {
		t.Fatal("an upload identical to the newest revision made a revision")
	}
	r3 := b.chunkedUpload(t, "alice", s2, revs[0]) // another session, same bytes
	if used := b.checkInvariant(t, "alice"); r3.snap.StoredBytes.Int64 != 0 || used != used2 {
		t.Fatalf("same bytes in another session: added %d, used %d -> %d", r3.snap.StoredBytes.Int64, used2, used)
	}
	rb := b.chunkedUpload(t, "bob", b.session(t, "bob"), revs[0])
	if bobUsed := b.checkInvariant(t, "bob"); rb.snap.StoredBytes.Int64 != used1 || bobUsed != used1 {
		t.Fatalf("bob's copy of alice's bytes: added %d, used %d, want %d", rb.snap.StoredBytes.Int64, bobUsed, used1)
	}

	// Every revision reads back from its row's manifest.
	for _, c := range []struct {
		owner string
		snap  db.SoloSnapshot
		want  []byte
	}{{"alice", r1.snap, revs[0]}, {"alice", r2.snap, revs[1]}, {"alice", r3.snap, revs[0]}, {"bob", rb.snap, revs[0]}} {
		var m Manifest
		if err := m.UnmarshalBinary(c.snap.Manifest); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(b.store.Open(ctx, c.owner, m))
		if err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("%s revision %d: %d bytes, %v", c.owner, c.snap.Revision.Int32, len(got), err)
		}
		if !slices.Equal(c.snap.ChunkIds, sortedIDs(m.ChunkIDs())) {
			t.Fatalf("chunk_ids %v differ from the manifest's", c.snap.ChunkIds)
		}
	}

	// Dropping r1 frees nothing (r3 holds the same chunks); then dropping r3 frees what r2
	// does not share, exactly.
	dropRevision := func(snap db.SoloSnapshot) []string {
		var keys []string
		err := postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error {
			q := b.q.WithTx(tx)
			if _, err := tx.Exec(ctx, `DELETE FROM solo_snapshots WHERE id = $1`, snap.ID); err != nil {
				return err
			}
			var err error
			keys, err = release(ctx, q, snap.UserID, snap.ChunkIds, 0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	if keys := dropRevision(r1.snap); len(keys) != 0 || b.checkInvariant(t, "alice") != used2 {
		t.Fatalf("dropping a revision whose chunks another still uses freed %d chunks", len(keys))
	}
	keys := dropRevision(r3.snap)
	used := b.checkInvariant(t, "alice")
	if len(keys) == 0 || used != manifestStored(r2.manifest) {
		t.Fatalf("after dropping r1 and r3: freed %d chunks, used %d, want the stored size of r2's chunks %d", len(keys), used, manifestStored(r2.manifest))
	}
	for _, k := range keys {
		_, _, id, err := ParseKey(k)
		if err != nil || slices.Contains(r2.snap.ChunkIds, id) {
			t.Fatalf("freed %q (%v), which revision 2 uses", k, err)
		}
	}
}

func sortedIDs(ids []int64) []int64 { s := slices.Clone(ids); slices.Sort(s); return s }

// manifestStored is the stored size of the distinct chunks of m.
func manifestStored(m Manifest) int64 {
	seen := map[int64]bool{}
	var n int64
	for _, ref := range m.Refs {
		if !seen[ref.ChunkID] {
			seen[ref.ChunkID] = true
			n += ref.StoredSize
		}
	}
	return n
}

// TestQueriesReferenceRacesRelease: GC releasing a chunk's last reference and an upload
// referencing the same chunk, in both orders, with the first transaction holding its row
// lock while the second waits.
func TestQueriesReferenceRacesRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDB(t, "carol")
	body := autosaves(60, 1)[0][:50_000]
	r := b.chunkedUpload(t, "carol", b.session(t, "carol"), body)
	id := r.manifest.Refs[0].ChunkID
	h := r.manifest.Refs[0].Hash

	// second runs fn in a transaction of its own while the test holds another open; blocked
	// reports whether fn is still waiting after a pause, done gives its outcome.
	second := func(fn func(q *db.Queries) error) (blocked func() bool, done <-chan error) {
		ch := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			ch <- postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error { close(started); return fn(b.q.WithTx(tx)) })
		}()
		<-started
		return func() bool {
			select {
			case err := <-ch:
				ch <- err
				return false
			case <-time.After(300 * time.Millisecond):
				return true
			}
		}, ch
	}

	// GC first: the upload waits, then finds the chunk gone (a tombstone is never referenced).
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	freed, err := b.q.WithTx(tx).ChunkRelease(ctx, []int64{id})
	if err != nil || len(freed) != 1 {
		t.Fatalf("ChunkRelease = %v, %v", freed, err)
	}
	var got []db.ChunkReferenceLiveRow
	blocked, done := second(func(q *db.Queries) error {
		var err error
		got, err = q.ChunkReferenceLive(ctx, db.ChunkReferenceLiveParams{UserID: "carol", Hashes: [][]byte{h[:]}})
		return err
	})
	if !blocked() {
		t.Fatal("the upload's reference did not wait for GC's row lock")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || len(got) != 0 {
		t.Fatalf("reference after GC freed the chunk: %v, %v; want nothing found", got, err)
	}
	// The upload stores the bytes anew: a new row, a new key; the tombstone stays for its job.
	newID := id + 1000
	rows, err := b.q.ChunkInsert(ctx, db.ChunkInsertParams{UserID: "carol", ChunkIds: []int64{newID}, Hashes: [][]byte{h[:]},
		Sizes: []int32{int32(r.manifest.Refs[0].Size)}, Stored: []int32{int32(r.manifest.Refs[0].StoredSize)}, Encodings: []int16{int16(r.manifest.Refs[0].Encoding)}})
	if err != nil || len(rows) != 1 || rows[0].ID != newID || Key("carol", h, newID) == Key("carol", h, id) {
		t.Fatalf("re-storing freed bytes: %+v, %v", rows, err)
	}
	if n, err := b.q.ChunkDeleteTombstones(ctx, []int64{id, newID}); err != nil || n != 1 {
		t.Fatalf("ChunkDeleteTombstones = %d, %v; want only the tombstone", n, err)
	}

	// Upload first: GC waits, then finds a reference left and frees nothing.
	tx, err = b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.q.WithTx(tx).ChunkReferenceLive(ctx, db.ChunkReferenceLiveParams{UserID: "carol", Hashes: [][]byte{h[:]}}); err != nil || len(got) != 1 {
		t.Fatalf("ChunkReferenceLive = %v, %v", got, err)
	}
	blocked, done = second(func(q *db.Queries) error {
		var err error
		freed, err = q.ChunkRelease(ctx, []int64{newID})
		return err
	})
	if !blocked() {
		t.Fatal("GC's release did not wait for the upload's row lock")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || len(freed) != 0 {
		t.Fatalf("release racing a reference freed %v, %v; want nothing", freed, err)
	}
	var refcount int32
	var state string
	if err := b.pool.QueryRow(ctx, `SELECT refcount, state FROM snapshot_chunks WHERE id = $1`, newID).Scan(&refcount, &state); err != nil || refcount != 1 || state != "live" {
		t.Fatalf("chunk after the race: refcount %d, %s, %v; want 1, live", refcount, state, err)
	}
}

// TestQueriesOverQuotaReservesNothing: a reservation that does not fit takes nothing and no
// chunk id; dropping the upload leaves the user as before.
func TestQueriesOverQuotaReservesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupDB(t, "erin")
	if _, err := b.q.QuotaSet(ctx, db.QuotaSetParams{UserID: "erin", QuotaBytes: 1000}); err != nil {
		t.Fatal(err)
	}
	s := b.session(t, "erin")
	id := uuid.New()
	if _, err := b.q.SnapshotUploadCreate(ctx, db.SnapshotUploadCreateParams{ID: id, SessionID: s, UserID: "erin"}); err != nil {
		t.Fatal(err)
	}
	_, err := b.q.SnapshotUploadReserve(ctx, db.SnapshotUploadReserveParams{UploadID: id, UserID: "erin", Bytes: 1001, N: 1})
	if !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("reserving past the quota: %v, want no row", err)
	}
	row, err := b.q.SnapshotUploadReserve(ctx, db.SnapshotUploadReserveParams{UploadID: id, UserID: "erin", Bytes: 1000, N: 2})
	if err != nil || row.UsedBytes != 1000 || len(row.ChunkIds) != 2 || row.ChunkIds[0] == row.ChunkIds[1] {
		t.Fatalf("reserving exactly the quota: %+v, %v", row, err)
	}
	if used := b.checkInvariant(t, "erin"); used != 1000 {
		t.Fatalf("used %d during the upload, want 1000", used)
	}
	if err := postgres.InTx(ctx, b.pool, func(tx pgx.Tx) error { _, err := b.drop(ctx, b.q.WithTx(tx), id); return err }); err != nil {
		t.Fatal(err)
	}
	if used := b.checkInvariant(t, "erin"); used != 0 {
		t.Fatalf("used %d after dropping the upload, want 0", used)
	}
}

// TestReferenceLiveProbesPerHash: ChunkReferenceLive, run as the upload runs it (planned for
// each run), looks up each hash with one index probe and locks and updates only the rows it
// found, however many chunks the owner stores and whatever the statistics say: an owner with
// 20,000 live chunks and tables never analysed (the state of a new deployment, where the
// first plans are made). The plan before probed the owner's index and filtered every one of
// the owner's chunks against the hashes.
func TestReferenceLiveProbesPerHash(t *testing.T) {
	b := setupDB(t, "big")
	ctx := context.Background()
	if _, err := b.pool.Exec(ctx, `
		INSERT INTO snapshot_chunks (user_id, sha256, size_bytes, stored_bytes, encoding, refcount)
		SELECT 'big', sha256(int4send(i)), 100, 100, 0, 1 FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	// 64 hashes, 32 of which the owner has.
	var hashes [][]byte
	for i := range 64 {
		h := sha256Of(int32(i*300 + 1))
		if i%2 == 1 {
			h = sha256Of(int32(-i))
		}
		hashes = append(hashes, h)
	}
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// The generated statement, run the way the upload runs it, under EXPLAIN ANALYZE.
	ex := &explainer{q: postgres.PlanEachRun(tx)}
	if _, err := db.New(ex).ChunkReferenceLive(ctx, db.ChunkReferenceLiveParams{UserID: "big", Hashes: hashes}); !errors.Is(err, errExplained) {
		t.Fatal(err)
	}
	plan := ex.plan
	var nodes []map[string]any
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		nodes = append(nodes, n)
		for _, c := range asSlice(n["Plans"]) {
			walk(c.(map[string]any))
		}
	}
	var root []map[string]any
	if err := json.Unmarshal(plan, &root); err != nil {
		t.Fatal(err)
	}
	walk(root[0]["Plan"].(map[string]any))
	updated := root[0]["Plan"].(map[string]any)["Actual Rows"]
	for _, n := range nodes {
		if n["Relation Name"] != "snapshot_chunks" {
			continue
		}
		if n["Node Type"] == "Seq Scan" && n["Actual Rows"].(float64) > 64 {
			t.Errorf("a scan of the whole table read %v rows:\n%s", n["Actual Rows"], plan)
		}
		if removed, _ := n["Rows Removed by Filter"].(float64); removed > 64 {
			t.Errorf("%s filtered out %v rows:\n%s", n["Node Type"], removed, plan)
		}
	}
	if updated != float64(32) {
		t.Errorf("updated %v rows, want 32:\n%s", updated, plan)
	}
}

func sha256Of(i int32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(i))
	h := sha256.Sum256(b[:])
	return h[:]
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// explainer runs the statement a generated query hands it under EXPLAIN (ANALYZE) instead,
// keeps the plan and fails the query with errExplained.
type explainer struct {
	q    postgres.Querier
	plan []byte
}

var errExplained = errors.New("explained")

func (e *explainer) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, e.explain(ctx, sql, args)
}

func (e *explainer) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return nil, e.explain(ctx, sql, args)
}

func (e *explainer) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return errRow{e.explain(ctx, sql, args)}
}

func (e *explainer) explain(ctx context.Context, sql string, args []any) error {
	if err := e.q.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&e.plan); err != nil {
		return err
	}
	return errExplained
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
