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
-- Returns true when the row was (re)inserted: on start, or after other nodes purged this
-- one (it could not beat for the purge age) — then its presence rows are gone too.
INSERT INTO presence_nodes (node_id) VALUES (@node_id)
ON CONFLICT (node_id) DO UPDATE SET seen_at = now()
RETURNING (xmax = 0) AS inserted;

-- name: PresenceNodeDelete :exec
-- A node leaving cleanly; its connection rows are deleted as its connections close.
DELETE FROM presence_nodes WHERE node_id = @node_id;

-- name: PresenceConnectionPurge :many
-- Deletes the rows of nodes silent for longer than max_age (or gone) and returns them.
DELETE FROM presence_connections pc
WHERE NOT EXISTS (
    SELECT 1 FROM presence_nodes n WHERE n.node_id = pc.node_id AND n.seen_at >= now() - @max_age::interval
)
RETURNING pc.session_id, pc.user_id;

-- name: PresenceNodePurge :exec
DELETE FROM presence_nodes WHERE seen_at < now() - @max_age::interval;

-- name: PresenceNodeConnectionsDelete :exec
-- A node leaving cleanly drops whatever rows remain.
DELETE FROM presence_connections WHERE node_id = @node_id;

-- name: PresenceConnectionCountSet :exec
UPDATE presence_connections SET conns = @conns
WHERE session_id = @session_id AND user_id = @user_id AND node_id = @node_id;
