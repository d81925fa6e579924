// Package chunkstore stores snapshot revisions as content-defined, compressed chunks
// in the owner's storage: it splits a stream into chunks addressed by SHA-256, compresses each,
// writes them under immutable per-owner blob keys, encodes the manifest that lists a
// revision's chunks in order, and streams a revision's exact bytes back from its manifest.
// It knows nothing of the database; the snapshot lifecycle code keeps chunk rows, reference
// counts and quota in the transactions described below (queries/chunks.sql, migration 0006).
//
// # Choices, measured
//
// A 1 MiB whiteboard-like JSON scene (1000 shapes, mostly freehand strokes; see
// scene_test.go) is saved 20 times, each time with 10 shapes (~1 %) redrawn, moved, added
// or erased at random places in its middle. Stored bytes of the 20 autosaves are the sum of
// the compressed sizes of the distinct chunks, over 8 scenes (seeds); throughput is the best
// of the rounds of chunking alone, on a shared 2-core machine (noisy: read the ratios, not
// the absolute numbers):
//
//	chunker (min/avg/max KiB)                          MiB/s   stored, 20 autosaves (MiB)
//	restic/chunker v0.4.0, 4/16 (bits 14)/64               50   1.33 (1.09-1.50)
//	restic/chunker v0.4.0, 2/16 (bits 14)/64               44   1.30 (1.07-1.44)
//	jotfs/fastcdc-go v0.2.0, 4/16/64                       110   1.17 (1.09-1.22)
//	PlakarKorp/go-cdc-chunkers v1.1.0 fastcdc-v1.0.0       357   1.20 (1.13-1.32)
//
// On the first scene, one revision's chunks: restic 4/16/64 mean 18.6 KiB, sd 12.3 KiB,
// p10-p90 6.2-29.6 KiB, max 60.6 KiB; go-cdc-chunkers fastcdc mean 18.3 KiB, sd 5.2 KiB,
// p10-p90 11.4-23.2 KiB, max 26.9 KiB (FastCDC's normalisation keeps chunks near the average, so per-chunk costs
// are predictable).
//
// Chosen: FastCDC from github.com/PlakarKorp/go-cdc-chunkers, algorithm "fastcdc-v1.0.0"
// (a versioned, spec-faithful variant: its cut points cannot move under a library upgrade),
// min 4 KiB, normal 16 KiB, max 64 KiB. Its dedup equals jotfs/fastcdc-go's within the
// spread between scenes and beats restic/chunker's (whose widely spread chunk sizes make an
// edit cost more, up to 1.50 MiB on one scene); it chunked fastest in every run (3 to 7
// times restic/chunker; the ranking held, the figures did not), has the narrowest size
// distribution, and is maintained (jotfs/fastcdc-go has not moved for years and XORs its
// seed into a package-level table). 20 autosaves store about 1.2 MiB instead of 20 MiB.
//
// Compression: klauspost/compress/zstd, one Encoder and one Decoder per process (Codec),
// shared by all goroutines through the stateless EncodeAll/DecodeAll. Levels, on the chunks
// of one 1 MiB scene; the speeds are the range over runs on the loaded machine:
//
//	level      ratio    20 autosaves stored   compress    decompress
//	fastest    0.231    1.18 MiB              26-170 MiB/s  321-585 MiB/s
//	default    0.223    1.14 MiB              15-134 MiB/s   45-418 MiB/s
//	better     0.216    1.11 MiB               6-15 MiB/s   474-575 MiB/s
//	best       0.208    1.06 MiB                1-3 MiB/s   114-564 MiB/s
//
// SpeedFastest is chosen: within a few percent of the best ratio at several times the speed,
// so an upload's CPU stays small next to its fsync. A chunk that compression does not make
// smaller is stored raw (EncodingRaw), so incompressible data costs exactly its size. A
// chunk whose sampled bytes are near-uniform (Incompressible: collision entropy above 7.5
// bits per byte over 2,048 bytes) is stored raw without trying: zstd would fail on it anyway,
// and trying was about 0.75 ms of CPU per MiB of such data.
//
// # Layout
//
// A chunk lives at Key(owner, hash, chunkID) = chunks/<owner prefix>/<sha256>-<id>: the
// owner prefix (a hash of the user id) scopes dedup to one owner — the same bytes of two
// users are two chunks, two keys, two charges — and the chunk id (the snapshot_chunks row)
// makes every key written once. A revision row holds its Manifest (version-1 encoding, about
// 40 bytes per chunk) and the distinct chunk ids it references (chunk_ids bigint[]).
//
// Revisions stored before chunking stay as they are: a row without a manifest is a whole
// blob, read from blob_key, its size_bytes counted in used_bytes, freed by GC as before. There
// is no conversion job: such revisions age out through GC. (A restore of one re-chunks its
// bytes through the upload path.)
//
// # Packs
//

// Since migration 0011 an upload writes the new chunks it stores as one object, a pack
// (PackKey: packs/<owner prefix>/<pack id>), their stored bytes one after another, as restic
// does: one file to write and fsync per upload instead of one per chunk. A chunk row records
// (pack_id, pack_offset) and a manifest (version 2) repeats them per ref, so ReadAll fetches
// each pack once — ranges with ReadAt on a local file, one GET read through in offset order
// on S3 — and decodes the chunks in manifest order. SnapshotUploadReserve allocates the pack
// id with the chunk ids and records it on the upload row, so dropping the upload deletes the
// pack (no listing needed); the commit inserts the snapshot_packs row with live_chunks = the
// chunk rows it inserted (none: the pack is unneeded and deleted at once).
//
// GC rule for packs: a chunk row freed from a pack is deleted in the statement that frees
// it (ChunkRelease) and its pack loses one live chunk (PackRelease); the pack becomes a
// tombstone when it has none left, and its object is deleted DeletionGrace later, then the
// row. A pack with a live chunk is kept whole: its dead bytes are not repacked. They are
// the service's cost, not the user's: used_bytes still counts the stored bytes of the user's
// live chunks only. (An autosave's pack holds the ~10 chunks an edit touched, which the next
// edits mostly replace, so packs die whole; a first upload's pack lives as long as any of its
// chunks does. Repacking — copying a pack's live chunks into a new pack when its dead bytes
// pass a share, in one transaction that repoints their rows and manifests — is the
// follow-up if that cost shows.)
//
// Old layouts stay readable; nothing is migrated: a manifest-version-1 ref (or a v2 ref with
// pack 0) is a chunk stored as an object of its own (Key), and its row, without a pack, is
// freed as a tombstone as before; a revision without a manifest is a whole blob. Both age out
// through retention — a conversion job would read and rewrite every stored byte for storage
// that retention frees anyway.
//
// # Accounting
//
//	used_bytes == Σ stored_bytes of the user's live chunks
//	            + Σ reserved_bytes of the user's uploads in flight
//	            + Σ size_bytes of the user's whole-blob revisions
//	refcount(chunk) == number of revisions and uploads whose chunk_ids hold its id
//
// Both hold after every transaction below. A revision's stored_bytes is what its upload
// added (the stored size of the chunks it inserted); a restore adds 0.
//
// Lock order, in every transaction: solo_sessions row, then snapshot_uploads /
// solo_snapshots rows, then snapshot_chunks rows in ascending id (each statement that changes
// chunk rows first locks them with SELECT ... ORDER BY id FOR UPDATE; new rows are inserted
// in ascending sha256), then the solo_user_storage row.
//
// # Integration: which calls, in which transaction
//
// Upload (POST .../snapshot/). Before reading the body: refuse only when remaining is 0.
//
//	T0  SnapshotUploadCreate(id, session, user, idempotency key).
//	    Split the body with Codec.Split; collect chunks into a batch (copy Data/Stored:
//	    Split reuses them) of at most ~1 MiB stored, skipping hashes this upload already
//	    referenced; per batch:
//	Ti  SnapshotUploadLock(id) (no row: reaped, abort)
//	    ChunkReferenceLive(user, batch hashes)       -> refs for chunks the owner has
//	    SnapshotUploadAddRefs(id, their ids)
//	    SnapshotUploadReserve(id, user, Σ stored of the rest, n = count of the rest)
//	        no row: over quota -> Drop (below), 403 quota_exceeded, nothing stored
//	    commit
//	    Store.Put each new chunk under the ids returned (concurrently, a few at a time: each
//	    local Put fsyncs)
//	Ci  SnapshotUploadLock(id)
//	    ChunkReferenceLive(user, new hashes)         -> made live meanwhile by another upload
//	    ChunkInsert(user, remaining ids, hashes, sizes, stored, encodings)
//	        a returned id other than the proposed one: another upload won; queue the
//	        deletion of this upload's blob (River, same transaction), count nothing
//	    SnapshotUploadSettle(id, user, reserved, added = Σ stored of rows inserted with the
//	        proposed id, unused = reserved - added, chunk_ids = all ids referenced in Ci)
//	    commit
//	Tc  SnapshotUploadLock(id); SessionRevisionNext(session, sha256)
//	        no row: identical to the newest revision -> Drop instead, answer 200 with it
//	    SnapshotUploadCommit(upload, revision, size, sha256, content type, manifest, ...)
//	        (no row: the reaper dropped it meanwhile)
//	    move the Idempotency-Key from the upload row to solo_snapshot_idempotency_keys;
//	    commit.
//
// internal/solo runs one batch per upload: a body is at most SOLO_SNAPSHOT_MAX_BYTES and is
// read into memory before it is split, so its chunks are too. It also merges T0 into Ti and
// Ci into Tc, two commits per upload instead of four: Ti inserts the upload row itself, and
// Tc locks the upload, numbers the revision (the session row), then does Ci's statements
// and commits. Taking the upload row before the session row cannot deadlock: only the upload
// itself and the reaper ever lock an upload row. And it splits the body in memory without
// compressing (SplitBytes, the boundaries Split finds), compressing only the chunks Ti finds
// missing (an autosave compresses a few chunks, not the whole body).
//
// An Idempotency-Key is claimed by T0 (unique per session among uploads in flight) after
// looking it up among committed revisions, as today. Until the migration that lands with
// this path makes solo_snapshots.blob_key nullable, Tc passes the unused whole-blob key the
// revision would have had (solo.BlobKey): nothing is ever written there, and GC must not
// queue it for deletion (it would be a harmless no-op).
//
// Drop (failed, over-quota, duplicate or reaped upload), one transaction:
// SnapshotUploadDelete(id) -> reserved_bytes, chunk_ids; ChunkRelease(chunk_ids) -> freed
// chunks; QuotaRelease(user, reserved_bytes + Σ stored_bytes of freed); queue blob deletion
// of Key(owner, sha256, id) for each freed chunk. (internal/solo needs no River client on
// the upload path: the tombstones themselves are the durable record; the code that freed them
// deletes their blobs right after committing, then the rows, and the reaper finishes
// tombstones older than its grace period when that code died in between.) The reaper does the same for every
// SnapshotUploadsAbandoned id, and the orphan sweep lists chunks/ and deletes blobs older than
// the grace period whose id ParseKey gives and ChunkIDsKnown does not know (written by an
// upload that died between Ti and Ci).
//
// GC (keep_last, pinned revisions excluded from both the deletion and the count), per batch,
// one transaction: lock the sessions and delete the doomed revisions as today, returning
// chunk_ids, manifest IS NULL, size_bytes, blob_key; ChunkRelease(concatenated chunk_ids);
// per user QuotaRelease(Σ stored_bytes of freed chunks + Σ size_bytes of whole-blob
// revisions); one DeleteBlob job with the freed chunk keys and whole-blob keys. The deletion
// job deletes the blobs, then ChunkDeleteTombstones(ids parsed from the keys); a tombstone
// left behind (job lost) is re-queued by ChunkTombstonesBefore.
//
// Restore (POST .../snapshots/{revision}/restore/), one transaction: lock the session,
// SnapshotSourceLock(source), ChunkReferenceByID(source.chunk_ids) (rows != ids: corrupt),
// SessionRevisionNext, SnapshotRestoreInsert (stored_bytes 0, restored_from). Pin: lock the
// session, SnapshotPin (no row and the revision exists: 409, 50 pinned). Read: the revision
// row, then Store.Open(owner, manifest) streamed to the response with the stored ETag.
//
// Reconcile, per user, one transaction: lock the storage row (QuotaLock),
// ChunkRefcountDrift; actual 0 -> ChunkRelease(id repeated refcount times), release and
// queue as in Drop; actual >= 1 -> ChunkRefcountSet; a reference to a missing or tombstoned
// chunk is logged as corruption (the revision can no longer be read); then
// ChunkUsageActual (in place of QuotaUsageFromRows) and QuotaRepair when it differs.
//
// # The race: an upload re-references a chunk GC is freeing
//
// Both sides change the chunk row under its row lock, in id order. If the upload's
// ChunkReferenceLive (or ChunkInsert's conflict update) locks the row first, refcount stays at
// least 1 when GC's ChunkRelease gets the lock, and the chunk is not freed. If ChunkRelease
// locks it first, it sets state 'deleting' in the same statement that drops the last
// reference and queues the blob's deletion in the same transaction; when the upload's
// statement then gets the lock, READ COMMITTED re-checks its condition state = 'live' on the
// new row version, the row no longer matches, and the chunk counts as missing: the upload
// reserves, writes the bytes under a new chunk id — a new key — and inserts a new live row
// (the unique index on live rows ignores the tombstone). The queued deletion removes only the
// old key and then the tombstone row. So a referenced chunk is never deleted, a tombstone is
// never referenced, and no key is ever written twice.
package chunkstore
