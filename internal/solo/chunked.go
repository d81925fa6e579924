package solo

// Chunked uploads (README: Snapshot storage that costs what changed): a body becomes
// content-defined, compressed chunks in its owner's storage and a revision row holding their
// manifest. The transactions, their lock order and the race with GC are internal/chunkstore's
// package doc; this file follows it, with one batch per upload (a body is at most
// SOLO_SNAPSHOT_MAX_BYTES and already in memory, so its chunks are too).
//
// Freed chunks (a dropped upload, reconcile) become tombstones in the transaction that frees
// them; the tombstone row is the durable record that their blob must go. The code that freed
// them deletes the blobs right after committing and then the rows; when it dies in between,
// the reaper finds the tombstone (ChunkTombstonesBefore) and finishes. GC queues its
// deletions through River (DeleteBlobArgs) in its own transaction instead.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/m4sh/backend/gen/db"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/blob"
	"github.com/m4sh/backend/internal/chunkstore"
	"github.com/m4sh/backend/internal/postgres"
)

// newChunk is a chunk of an upload: its logical bytes and, once it is known that the owner
// lacks it (only then: compression is the costly part of chunking), its stored form.
type newChunk struct {
	ref    chunkstore.Ref // StoredSize and Encoding 0 until encoded
	data   []byte
	stored []byte // nil until encoded
}

// chunkUpload is one upload in flight.
type chunkUpload struct {
	id      uuid.UUID
	user    string
	session uuid.UUID
	order   []chunkstore.Hash // the body's chunks, in order
	chunks  []newChunk        // its distinct chunks, in first-use order
	sum     chunkstore.Summary
	// restoredFrom is the revision a restore of a whole-blob revision copies (0: an upload).
	restoredFrom int32

	refOf    map[chunkstore.Hash]chunkstore.Ref // chunks referenced at reserve, with their ids
	fresh    []*newChunk                        // chunks to write (not found live at reserve)
	ids      []int64                            // the ids reserved for fresh, in order
	reserved int64                              // stored bytes reserved for fresh
	pack     int64                              // the pack reserved for fresh (0: none)
	offsets  []int64                            // where each of fresh is in the pack, once written
}

// split cuts body into chunks; duplicates within the body are kept once. The chunks' data
// are slices of body (not copies): body must stay unchanged while u is in use.
func (s *Service) split(body []byte) (*chunkUpload, error) {
	u := &chunkUpload{refOf: map[chunkstore.Hash]chunkstore.Ref{}}
	seen := map[chunkstore.Hash]bool{}
	sum, err := s.codec.SplitBytes(body, func(c *chunkstore.Chunk) error {
		u.order = append(u.order, c.Ref.Hash)
		if !seen[c.Ref.Hash] {
			seen[c.Ref.Hash] = true
			u.chunks = append(u.chunks, newChunk{ref: c.Ref, data: c.Data})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chunking snapshot: %w", err)
	}
	u.sum = sum
	return u, nil
}

// encode compresses c once (stored raw when that saves nothing).
func (s *Service) encode(c *newChunk) {
	if c.stored != nil {
		return
	}
	stored, enc := s.codec.Encode(nil, c.data)
	c.stored, c.ref.StoredSize, c.ref.Encoding = stored, int64(len(stored)), enc
}

// referenceLive runs ChunkReferenceLive in tx, planned for each run (postgres.PlanEachRun):
// its probes are one index lookup per hash whatever the plan, but the update that follows
// joins the ids found with the whole table, and a plan kept from when the owner's table was
// small would scan all of it on every upload.
func referenceLive(ctx context.Context, tx pgx.Tx, user string, hashes [][]byte) ([]db.ChunkReferenceLiveRow, error) {
	return db.New(postgres.PlanEachRun(tx)).ChunkReferenceLive(ctx, db.ChunkReferenceLiveParams{UserID: user, Hashes: hashes})
}

func hashesOf(cs []newChunk) [][]byte {
	out := make([][]byte, len(cs))
	for i := range cs {
		out[i] = cs[i].ref.Hash[:]
	}
	return out
}

func refFrom(id int64, sha []byte, size, stored int32, enc int16, pack pgtype.Int8, off pgtype.Int4) chunkstore.Ref {
	return chunkstore.Ref{Hash: chunkstore.Hash(sha), ChunkID: id, Size: int64(size), StoredSize: int64(stored), Encoding: chunkstore.Encoding(enc),
		Pack: pack.Int64, Offset: int64(off.Int32)}
}

// errUploadGone: the upload's row is gone (the reaper rolled it back) before it finished.
var errUploadGone = errors.New("upload row gone")

// errNoRoom: the reservation did not fit (or the owner has no storage row yet).
var errNoRoom = errors.New("reservation does not fit")

// uploadReserve records the upload in flight, claiming its Idempotency-Key among the
// session's uploads in flight (errKeyTaken when another holds it), takes a reference on each
// chunk the owner already has and reserves the stored bytes of the rest, with an id for
// each, before any blob is written — one transaction (internal/chunkstore's T0 and Ti).
// QuotaExceeded when the rest does not fit; nothing is recorded then.
func (s *Service) uploadReserve(ctx context.Context, u *chunkUpload, key string) error {
	create := db.SnapshotUploadCreateParams{ID: u.id, SessionID: u.session, UserID: u.user}
	if key != "" {
		create.IdempotencyKey = pgtype.Text{String: key, Valid: true}
	}
	waited := false
	for attempt := 0; ; attempt++ {
		var live []db.ChunkReferenceLiveRow
		var fresh []*newChunk
		var reserved int64
		var row db.SnapshotUploadReserveRow
		err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			q := s.q.WithTx(tx)
			if _, err := q.SnapshotUploadCreate(ctx, create); err != nil {
				if err = postgres.Interpret(err, "snapshot upload"); apperr.Is(err, apperr.Conflict) {
					return errKeyTaken
				}
				return fmt.Errorf("starting upload: %w", err)
			}
			var err error
			if live, err = referenceLive(ctx, tx, u.user, hashesOf(u.chunks)); err != nil {
				return err
			}
			have := make(map[chunkstore.Hash]bool, len(live))
			ids := make([]int64, len(live))
			for i, r := range live {
				have[chunkstore.Hash(r.Sha256)] = true
				ids[i] = r.ID
			}
			if len(ids) > 0 {
				if err := q.SnapshotUploadAddRefs(ctx, db.SnapshotUploadAddRefsParams{ID: u.id, ChunkIds: ids}); err != nil {
					return err
				}
			}
			fresh, reserved = nil, 0
			for i := range u.chunks {
				if c := &u.chunks[i]; !have[c.ref.Hash] {
					s.encode(c)
					fresh = append(fresh, c)
					reserved += c.ref.StoredSize
				}
			}
			if len(fresh) == 0 {
				return nil
			}
			row, err = q.SnapshotUploadReserve(ctx, db.SnapshotUploadReserveParams{
				UploadID: u.id, UserID: u.user, Bytes: reserved, N: int32(len(fresh)),
			})
			if errors.Is(err, pgx.ErrNoRows) {
				return errNoRoom // rolls back the upload row and the references too
			}
			return err
		})
		if err == nil {
			for _, r := range live {
				u.refOf[chunkstore.Hash(r.Sha256)] = refFrom(r.ID, r.Sha256, r.SizeBytes, r.StoredBytes, r.Encoding, r.PackID, r.PackOffset)
			}
			u.fresh, u.ids, u.reserved, u.pack = fresh, row.ChunkIds, reserved, row.PackID
			return nil
		}
		if !errors.Is(err, errNoRoom) {
			return err
		}
		// Nothing reserved: the bytes do not fit, or the owner has no storage row yet (and a
		// concurrent upload may have created it since). Only the first is a refusal.
		cur, err := s.q.QuotaGet(ctx, u.user)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if err := s.q.QuotaEnsure(ctx, db.QuotaEnsureParams{UserID: u.user, QuotaBytes: s.opts.DefaultQuota}); err != nil {
				return fmt.Errorf("creating storage row: %w", err)
			}
		case err != nil:
			return fmt.Errorf("reading quota: %w", err)
		case reserved > storageFrom(cur).Remaining() || attempt >= 3:
			// Another upload of the owner in flight may be storing these very chunks (two
			// identical uploads at once both find them missing and both reserve them): once
			// it has committed, a retry references them instead and needs less, maybe
			// nothing. Wait for the owner's other uploads once, then decide.
			if waited {
				return errQuota(storageFrom(cur), reserved)
			}
			waited = true
			if err := s.awaitOtherUploads(ctx, u); err != nil {
				return err
			}
		}
	}
}

// otherUploadsWait bounds how long an upload refused for quota waits for the owner's other
// uploads in flight (each takes milliseconds to finish once its body is read).
const otherUploadsWait = 5 * time.Second

// awaitOtherUploads waits until the owner has no upload in flight besides u, or
// otherUploadsWait has passed.
func (s *Service) awaitOtherUploads(ctx context.Context, u *chunkUpload) error {
	deadline := time.Now().Add(otherUploadsWait)
	for {
		n, err := s.q.SnapshotUploadsOthers(ctx, db.SnapshotUploadsOthersParams{UserID: u.user, ID: u.id})
		if err != nil {
			return fmt.Errorf("counting uploads in flight: %w", err)
		}
		if n == 0 || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// uploadWrite writes the fresh chunks as one pack object under the reserved pack id.
func (s *Service) uploadWrite(ctx context.Context, u *chunkUpload) error {
	chunks := make([]*chunkstore.Chunk, len(u.fresh))
	for i, c := range u.fresh {
		chunks[i] = &chunkstore.Chunk{Ref: c.ref, Stored: c.stored}
	}
	var err error
	u.offsets, err = s.chunks.PutPack(ctx, u.user, u.pack, chunks)
	return err
}

// commitResult is what uploadCommit did.
type commitResult struct {
	snap     Snapshot
	storage  Storage
	dup      bool        // identical to the newest revision: dropped, snap is that revision
	freed    []tombstone // chunks the drop of a duplicate freed
	unneeded []string    // blobs written for nothing (no row will ever name them)
}

// uploadCommit records the written chunks and turns the upload into the session's next
// revision, with its Idempotency-Key, in one transaction (internal/chunkstore's Ci and Tc).
// A chunk another upload of the owner made live meanwhile is referenced instead and the blob
// written for it is unneeded; what was inserted is the revision's stored_bytes and the rest
// of the reservation goes back. An upload identical to the newest revision (committed
// meanwhile) is dropped instead. Locks: the upload row (its own; only it and the reaper
// touch it), the session row (numbering), chunk rows, the storage row.
func (s *Service) uploadCommit(ctx context.Context, u *chunkUpload, ct, key string) (commitResult, error) {
	digest := hex.EncodeToString(u.sum.SHA256[:])
	var res commitResult
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		res = commitResult{}
		if _, err := q.SnapshotUploadLock(ctx, u.id); errors.Is(err, pgx.ErrNoRows) {
			return errUploadGone
		} else if err != nil {
			return err
		}
		rev, err := q.SessionRevisionNext(ctx, db.SessionRevisionNextParams{ID: u.session, Sha256: digest})
		var row db.SoloSnapshot
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			res.dup = true
			if row, err = q.SnapshotLatest(ctx, u.session); err != nil {
				return fmt.Errorf("getting latest snapshot: %w", err)
			}
			if res.freed, _, err = dropUpload(ctx, q, u.id); err != nil {
				return err
			}
			res.unneeded = u.writtenKeys()
		case err != nil:
			return err
		default:
			refs, added, refIDs, err := s.insertChunks(ctx, tx, u, &res)
			if err != nil {
				return err
			}
			st, err := q.SnapshotUploadSettle(ctx, db.SnapshotUploadSettleParams{
				UploadID: u.id, UserID: u.user, Reserved: u.reserved, Added: added, Unused: u.reserved - added, ChunkIds: refIDs,
			})
			if err != nil {
				return fmt.Errorf("settling upload: %w", err)
			}
			res.storage = Storage{Used: st.UsedBytes, Quota: st.QuotaBytes}
			m := chunkstore.Manifest{Refs: make([]chunkstore.Ref, len(u.order))}
			for i, h := range u.order {
				m.Refs[i] = refs[h]
			}
			enc, err := m.MarshalBinary()
			if err != nil {
				return err
			}
			row, err = q.SnapshotUploadCommit(ctx, db.SnapshotUploadCommitParams{
				UploadID: u.id, Revision: rev, SizeBytes: u.sum.Size, Sha256: digest, ContentType: ct,
				BlobKey: BlobKey(u.session, u.id), Manifest: enc,
				RestoredFrom: pgtype.Int4{Int32: u.restoredFrom, Valid: u.restoredFrom > 0},
			})
			if err != nil {
				return fmt.Errorf("committing revision: %w", err)
			}
		}
		if key != "" {
			n, err := q.SnapshotIdempotencyKeyInsert(ctx, db.SnapshotIdempotencyKeyInsertParams{
				SessionID: u.session, IdempotencyKey: key, SnapshotID: row.ID,
			})
			if err != nil {
				return fmt.Errorf("recording idempotency key: %w", err)
			}
			if n == 0 {
				return errKeyTaken // an upload with the same key committed first
			}
		}
		res.snap = snapshotFrom(row)
		return nil
	})
	return res, err
}

// insertChunks records the fresh chunks in q's transaction and returns every chunk of the
// upload with its id, the stored bytes the upload added, and the references the statement
// took (for the upload row, then the revision).
func (s *Service) insertChunks(ctx context.Context, tx pgx.Tx, u *chunkUpload, res *commitResult) (map[chunkstore.Hash]chunkstore.Ref, int64, []int64, error) {
	q := s.q.WithTx(tx)
	refs := make(map[chunkstore.Hash]chunkstore.Ref, len(u.chunks))
	for h, r := range u.refOf {
		refs[h] = r
	}
	if len(u.fresh) == 0 {
		return refs, 0, nil, nil
	}
	hashes := make([][]byte, len(u.fresh))
	for i, c := range u.fresh {
		hashes[i] = c.ref.Hash[:]
	}
	live, err := referenceLive(ctx, tx, u.user, hashes)
	if err != nil {
		return nil, 0, nil, err
	}
	var refIDs []int64
	found := make(map[chunkstore.Hash]bool, len(live))
	for _, r := range live {
		refs[chunkstore.Hash(r.Sha256)] = refFrom(r.ID, r.Sha256, r.SizeBytes, r.StoredBytes, r.Encoding, r.PackID, r.PackOffset)
		found[chunkstore.Hash(r.Sha256)] = true
		refIDs = append(refIDs, r.ID)
	}
	p := db.ChunkInsertParams{UserID: u.user, PackID: u.pack}
	proposed := make(map[chunkstore.Hash]int64, len(u.fresh))
	var packBytes int64
	for i, c := range u.fresh {
		proposed[c.ref.Hash] = u.ids[i]
		packBytes += c.ref.StoredSize
		if found[c.ref.Hash] {
			continue // its bytes in the pack stay unused
		}
		p.ChunkIds = append(p.ChunkIds, u.ids[i])
		p.Hashes = append(p.Hashes, c.ref.Hash[:])
		p.Sizes = append(p.Sizes, int32(c.ref.Size))
		p.Stored = append(p.Stored, int32(c.ref.StoredSize))
		p.Encodings = append(p.Encodings, int16(c.ref.Encoding))
		p.Offsets = append(p.Offsets, int32(u.offsets[i]))
	}
	var added int64
	var inserted int32
	if len(p.ChunkIds) > 0 {
		rows, err := q.ChunkInsert(ctx, p)
		if err != nil {
			return nil, 0, nil, err
		}
		for _, r := range rows {
			h := chunkstore.Hash(r.Sha256)
			refs[h] = refFrom(r.ID, r.Sha256, r.SizeBytes, r.StoredBytes, r.Encoding, r.PackID, r.PackOffset)
			refIDs = append(refIDs, r.ID)
			if r.ID == proposed[h] {
				added += int64(r.StoredBytes)
				inserted++
			}
		}
	}
	if inserted == 0 {
		// Every chunk of the pack was stored meanwhile by another upload: nothing refers to
		// the pack, so it is deleted after the commit.
		res.unneeded = append(res.unneeded, u.writtenKeys()...)
	} else if err := q.PackInsert(ctx, db.PackInsertParams{ID: u.pack, UserID: u.user, StoredBytes: packBytes, LiveChunks: inserted}); err != nil {
		return nil, 0, nil, fmt.Errorf("recording pack: %w", err)
	}
	return refs, added, refIDs, nil
}

// errNothingToDrop: the upload's row was gone already (dropped by someone else, or never
// committed).
var errNothingToDrop = errors.New("no upload to drop")

// tombstone is a chunk (stored as an object of its own) or a pack freed in a committed
// transaction whose object is still to be deleted; its row goes after the object.
type tombstone struct {
	id   int64
	key  string
	pack bool
}

// freed is what releasing chunk references freed, in q's transaction.
type freed struct {
	bytes      map[string]int64 // stored bytes of the freed chunks, per owner
	tombstones []tombstone      // chunks of their own and packs left without a live chunk
}

// releaseChunks drops references (ChunkRelease): freed chunks in packs are deleted and their
// packs lose them (PackRelease: a pack left with none becomes a tombstone); a freed chunk of
// its own becomes a tombstone.
func releaseChunks(ctx context.Context, q *db.Queries, ids []int64) (freed, error) {
	out := freed{bytes: map[string]int64{}}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.ChunkRelease(ctx, ids)
	if err != nil {
		return out, fmt.Errorf("releasing chunks: %w", err)
	}
	var packs []int64
	for _, r := range rows {
		out.bytes[r.UserID] += int64(r.StoredBytes)
		if r.PackID.Valid {
			packs = append(packs, r.PackID.Int64)
		} else {
			out.tombstones = append(out.tombstones, tombstone{id: r.ID, key: chunkstore.Key(r.UserID, chunkstore.Hash(r.Sha256), r.ID)})
		}
	}
	if len(packs) > 0 {
		gone, err := q.PackRelease(ctx, packs)
		if err != nil {
			return out, fmt.Errorf("releasing packs: %w", err)
		}
		for _, p := range gone {
			out.tombstones = append(out.tombstones, tombstone{id: p.ID, key: chunkstore.PackKey(p.UserID, p.ID), pack: true})
		}
	}
	return out, nil
}

// dropUpload undoes an upload in flight in q's transaction (Drop in internal/chunkstore's
// doc): its row goes, its references are released and its reservation and the chunks it
// alone held go back to the quota. It returns the freed chunks and packs, and the key of the
// upload's own pack (written or not, never referenced: deleted at once). No row: nothing to do.
func dropUpload(ctx context.Context, q *db.Queries, id uuid.UUID) ([]tombstone, []string, error) {
	up, err := q.SnapshotUploadDelete(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, errNothingToDrop
	}
	if err != nil {
		return nil, nil, fmt.Errorf("deleting upload: %w", err)
	}
	f, err := releaseChunks(ctx, q, up.ChunkIds)
	if err != nil {
		return nil, nil, err
	}
	if bytesFreed := up.ReservedBytes + f.bytes[up.UserID]; bytesFreed > 0 {
		if err := release(ctx, q, up.UserID, bytesFreed); err != nil {
			return nil, nil, err
		}
	}
	var own []string
	if up.PackID.Valid {
		own = []string{chunkstore.PackKey(up.UserID, up.PackID.Int64)}
	}
	return f.tombstones, own, nil
}

// drop undoes an upload in flight in its own transaction, then deletes the blobs it freed
// and the blobs it wrote that never became rows (written). Errors after the transaction are
// logged: the reaper finishes tombstones and orphan blobs.
func (s *Service) drop(ctx context.Context, u *chunkUpload, written []string) error {
	var freed []tombstone
	var own []string
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		freed, own, err = dropUpload(ctx, s.q.WithTx(tx), u.id)
		return err
	})
	if err != nil && !errors.Is(err, errNothingToDrop) {
		return fmt.Errorf("dropping upload: %w", err)
	}
	s.finishTombstones(ctx, freed)
	if len(own) == 0 {
		own = written
	}
	s.deleteUnneeded(ctx, own)
	return nil
}

// finishTombstones deletes freed chunks' blobs, then their rows — at once only when there
// is no DeletionGrace; otherwise the reaper does it once the grace has passed (a read may
// still be fetching a revision that referred to them).
func (s *Service) finishTombstones(ctx context.Context, ts []tombstone) {
	if len(ts) == 0 || s.opts.DeletionGrace > 0 {
		return
	}
	keys := make([]string, len(ts))
	for i, t := range ts {
		keys[i] = t.key
	}
	if err := s.deleteBlobs(ctx, keys); err != nil {
		s.log.WarnContext(ctx, "deleting freed chunks; the reaper will", "objects", len(keys), "err", err)
	}
}

// deleteUnneeded deletes chunk blobs that belong to no row (written for nothing); a failure
// leaves them to the reaper's orphan sweep.
func (s *Service) deleteUnneeded(ctx context.Context, keys []string) {
	if len(keys) == 0 {
		return
	}
	if err := blob.DeleteAll(ctx, s.blobs, keys); err != nil {
		s.log.WarnContext(ctx, "deleting unneeded chunk blobs; the reaper will", "chunks", len(keys), "err", err)
	}
}

// writtenKeys is the key of the upload's pack (written, or about to be), if it has one.
func (u *chunkUpload) writtenKeys() []string {
	if u.pack == 0 {
		return nil
	}
	return []string{chunkstore.PackKey(u.user, u.pack)}
}
