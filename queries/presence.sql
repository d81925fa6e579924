-- Presence shared across nodes (migration 0005). Changes to one user's rows in one session
-- run in a transaction holding PresenceUserLock, so that exactly one node sees a user's
-- first arrival and last departure in the cluster.

-- name: PresenceUserLock :exec
SELECT pg_advisory_xact_lock(hashtextextended(@lock_key::text, 0));

-- name: PresenceConnectionUpsert :one
-- Records this node's connection count for a user and returns how many rows the user had
-- before, on any node, this one included (the statement's snapshot predates the insert;
-- rows of dead nodes not yet purged count, so that the purge sees this row instead).
WITH up AS (
    INSERT INTO presence_connections (node_id, session_id, user_id, name, role, conns)
    VALUES (@node_id, @session_id, @user_id, @name, @role, @conns)
    ON CONFLICT (session_id, user_id, node_id) DO UPDATE SET conns = EXCLUDED.conns, name = EXCLUDED.name, role = EXCLUDED.role
)
SELECT count(*)::int FROM presence_connections o
WHERE o.session_id = @session_id AND o.user_id = @user_id;

-- name: PresenceConnectionTotals :one
-- This user's and all users' connections to a session on live nodes, this node's counted
-- whatever its heartbeat (the caps WS_MAX_CONNS_PER_USER and WS_MAX_CONNS_PER_SESSION). Run
-- after PresenceConnectionUpsert in a transaction holding the session's PresenceUserLock
-- (lock key: the session id alone), so that concurrent arrivals are counted one by one.
SELECT coalesce(sum(pc.conns) FILTER (WHERE pc.user_id = @user_id), 0)::int AS user_conns,
       coalesce(sum(pc.conns), 0)::int AS session_conns
FROM presence_connections pc
WHERE pc.session_id = @session_id
  AND (pc.node_id = @node_id OR EXISTS (
      SELECT 1 FROM presence_nodes n WHERE n.node_id = pc.node_id AND n.seen_at >= now() - @max_age::interval));

-- name: PresenceConnectionDelete :one
-- Deletes this node's row for a user and returns how many other nodes still have one.
WITH del AS (
    DELETE FROM presence_connections d
    WHERE d.session_id = @session_id AND d.user_id = @user_id AND d.node_id = @node_id
)
SELECT count(*)::int FROM presence_connections o
WHERE o.session_id = @session_id AND o.user_id = @user_id AND o.node_id <> @node_id;

-- name: PresenceUserCount :one
SELECT count(*)::int FROM presence_connections WHERE session_id = @session_id AND user_id = @user_id;

-- name: PresenceSessionUsers :many
-- The users connected to a session through a live node, once each.
SELECT pc.user_id, min(pc.name)::text AS name, min(pc.role)::text AS role
FROM presence_connections pc
JOIN presence_nodes n ON n.node_id = pc.node_id
WHERE pc.session_id = @session_id AND n.seen_at >= now() - @max_age::interval
GROUP BY pc.user_id
ORDER BY pc.user_id;

-- name: PresenceNodeHeartbeat :one
-- Returns true when the node was (re)inserted or its previous heartbeat was older than
-- max_age: on start, or when other nodes may have purged this one (it could not beat for
-- the purge age) — then some or all of its presence rows are gone.
WITH prev AS (SELECT seen_at FROM presence_nodes WHERE node_id = @node_id)
INSERT INTO presence_nodes (node_id) VALUES (@node_id)
ON CONFLICT (node_id) DO UPDATE SET seen_at = now()
RETURNING coalesce((SELECT seen_at < now() - @max_age::interval FROM prev), true)::bool AS stale;

-- name: PresenceNodeStop :exec
-- A node stopping cleanly: its last heartbeat, now, marked stopped.
INSERT INTO presence_nodes (node_id, stopped) VALUES (@node_id, true)
ON CONFLICT (node_id) DO UPDATE SET seen_at = now(), stopped = true;

-- name: PresenceNodeDelete :exec
-- A node leaving cleanly with no presence rows or open attendance spans left; one still
-- there keeps the node's last heartbeat for the others' sweep, which ends it after the
-- purge age.
DELETE FROM presence_nodes n
WHERE n.node_id = @node_id
  AND NOT EXISTS (SELECT 1 FROM presence_connections pc WHERE pc.node_id = n.node_id)
  AND NOT EXISTS (SELECT 1 FROM attendance_spans a WHERE a.node_id = n.node_id AND a.left_at IS NULL);

-- name: PresenceDeadRows :many
-- The presence rows of nodes silent for longer than max_age (or whose node row is gone), with
-- the node's last heartbeat (null when its row is gone) and whether it stopped cleanly.
SELECT pc.node_id, pc.session_id, pc.user_id, n.seen_at AS last_seen, coalesce(n.stopped, false)::bool AS stopped
FROM presence_connections pc
LEFT JOIN presence_nodes n ON n.node_id = pc.node_id
WHERE n.node_id IS NULL OR n.seen_at < now() - @max_age::interval
ORDER BY pc.node_id, pc.session_id, pc.user_id
LIMIT @lim;

-- name: PresenceDeadRowDelete :execrows
-- Deletes one row of a dead node, unless the node beat again meanwhile (0 rows: it did, or
-- another node's sweep deleted the row first).
DELETE FROM presence_connections pc
WHERE pc.node_id = @node_id AND pc.session_id = @session_id AND pc.user_id = @user_id
  AND NOT EXISTS (
      SELECT 1 FROM presence_nodes n WHERE n.node_id = pc.node_id AND n.seen_at >= now() - @max_age::interval);

-- name: PresenceUserDeadRowsDelete :many
-- Deletes a user's rows in a session on other nodes silent for longer than max_age (an
-- arrival got there before the sweep, e.g. just after a restart), returning each one's
-- node's last heartbeat (now when its row is gone) and whether it stopped cleanly. Run
-- holding the user's lock.
DELETE FROM presence_connections pc
WHERE pc.session_id = @session_id AND pc.user_id = @user_id AND pc.node_id <> @node_id
  AND NOT EXISTS (
      SELECT 1 FROM presence_nodes n WHERE n.node_id = pc.node_id AND n.seen_at >= now() - @max_age::interval)
RETURNING coalesce((SELECT n.seen_at FROM presence_nodes n WHERE n.node_id = pc.node_id), now())::timestamptz AS last_seen,
          coalesce((SELECT n.stopped FROM presence_nodes n WHERE n.node_id = pc.node_id), false)::bool AS stopped;

-- name: PresenceNodePurge :exec
-- Deletes the heartbeat rows of dead nodes whose presence rows and attendance spans are all
-- gone: a row kept while some remain keeps the node's last heartbeat for the sweep that ends
-- them.
DELETE FROM presence_nodes n
WHERE n.seen_at < now() - @max_age::interval
  AND NOT EXISTS (SELECT 1 FROM presence_connections pc WHERE pc.node_id = n.node_id)
  AND NOT EXISTS (SELECT 1 FROM attendance_spans a WHERE a.node_id = n.node_id AND a.left_at IS NULL);

-- name: PresenceConnectionCountSet :exec
UPDATE presence_connections SET conns = @conns
WHERE session_id = @session_id AND user_id = @user_id AND node_id = @node_id;
