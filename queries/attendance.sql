-- Attendance spans (migration 0007). Opened and closed by the attendance writer after the
-- presence transition committed (or by a sweep, in the transaction that purges a dead node's
-- rows); the partial unique index keeps one open span per user and session.

-- name: AttendanceSpanOpenMany :many
-- Opens a span for each user arriving in a session at joined_at, tagged with node_id (a
-- node alone; the nil uuid for a cluster's span: none), unless the session is not a
-- classroom session (no row). With a span open already there is no row either, unless it
-- was another node's: then this node takes it over (a reconnect to another node alone
-- within the grace: one span) and the row comes back with opened false. An entry with live
-- set opens only while the user has a presence row (a cluster's arrival written after the
-- user already left the cluster, on another node: no span for a visit that is over, which
-- would stay open until the sweep). One entry per user and session (the writer's rounds).
INSERT INTO attendance_spans (classroom_id, session_id, user_id, name, role, joined_at, node_id)
SELECT s.classroom_id, s.id, t.user_id, t.name, t.role, t.joined_at, nullif(t.node_id, '00000000-0000-0000-0000-000000000000'::uuid)
FROM (SELECT unnest(@session_ids::uuid[]) AS session_id, unnest(@user_ids::text[]) AS user_id, unnest(@names::text[]) AS name,
             unnest(@roles::text[]) AS role, unnest(@joined_ats::timestamptz[]) AS joined_at, unnest(@node_ids::uuid[]) AS node_id,
             unnest(@live::bool[]) AS live) t
JOIN classroom_sessions s ON s.id = t.session_id AND s.classroom_id IS NOT NULL
WHERE NOT t.live OR EXISTS (SELECT 1 FROM presence_connections pc WHERE pc.session_id = t.session_id AND pc.user_id = t.user_id)
ON CONFLICT (session_id, user_id) WHERE left_at IS NULL
DO UPDATE SET node_id = EXCLUDED.node_id WHERE attendance_spans.node_id IS DISTINCT FROM EXCLUDED.node_id
RETURNING classroom_id, session_id, user_id, role, joined_at, (xmax = 0)::bool AS opened;

-- name: AttendanceSpanCloseMany :many
-- Closes each user's open span at left_at, never before it opened; no row when none is
-- open. With a node_id (a node alone; the nil uuid for any) only that node's span: one
-- taken over by another node stays open. Not while the user has a presence row (a
-- cluster): a departure written after the same user arrived again, here or on another
-- node, is stale, and the span goes on as over a leave grace. One entry per user and
-- session (the writer's rounds).
UPDATE attendance_spans a
SET left_at = greatest(a.joined_at, t.left_at)
FROM (SELECT unnest(@session_ids::uuid[]) AS session_id, unnest(@user_ids::text[]) AS user_id,
             unnest(@left_ats::timestamptz[]) AS left_at, unnest(@node_ids::uuid[]) AS node_id) t
WHERE a.session_id = t.session_id AND a.user_id = t.user_id AND a.left_at IS NULL
  AND (t.node_id = '00000000-0000-0000-0000-000000000000'::uuid OR a.node_id = t.node_id)
  AND NOT EXISTS (SELECT 1 FROM presence_connections pc WHERE pc.session_id = a.session_id AND pc.user_id = a.user_id)
RETURNING a.classroom_id, a.session_id, a.user_id, a.role, a.joined_at, a.left_at::timestamptz AS left_at;

-- name: AttendanceSpanCloseNode :many
-- Closes every span a node opened that is still open, now (a node alone shutting down).
UPDATE attendance_spans
SET left_at = greatest(joined_at, now())
WHERE node_id = @node_id AND left_at IS NULL
RETURNING classroom_id, session_id, user_id, role, joined_at, left_at::timestamptz AS left_at;

-- name: AttendanceSpanCloseDead :many
-- Closes the open spans of nodes silent for longer than max_age at the node's last heartbeat
-- (now when its row is gone): a node alone that was killed. Their heartbeat rows are kept
-- until then (PresenceNodePurge).
UPDATE attendance_spans a
SET left_at = greatest(a.joined_at, coalesce((SELECT n.seen_at FROM presence_nodes n WHERE n.node_id = a.node_id), now()))
WHERE a.node_id IS NOT NULL AND a.left_at IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM presence_nodes n WHERE n.node_id = a.node_id AND n.seen_at >= now() - @max_age::interval)
RETURNING a.classroom_id, a.session_id, a.user_id, a.role, a.joined_at, a.left_at::timestamptz AS left_at;

-- name: AttendanceSpanReopenPresent :many
-- Opens a span for each user with presence rows (any node, dead ones not yet purged
-- included) and no open span, whose first row is older than settle: a span start the writer
-- queued but a crash lost. It starts at the user's first row (since), never inside one of
-- their closed spans. Run by every sweep before dead rows are purged.
INSERT INTO attendance_spans (classroom_id, session_id, user_id, name, role, joined_at)
SELECT s.classroom_id, pc.session_id, pc.user_id, min(pc.name), min(pc.role),
       greatest(min(pc.since), coalesce((SELECT max(c.left_at) FROM attendance_spans c
                                        WHERE c.session_id = pc.session_id AND c.user_id = pc.user_id), '-infinity'))
FROM presence_connections pc
JOIN classroom_sessions s ON s.id = pc.session_id AND s.classroom_id IS NOT NULL
WHERE NOT EXISTS (SELECT 1 FROM attendance_spans o WHERE o.session_id = pc.session_id AND o.user_id = pc.user_id AND o.left_at IS NULL)
GROUP BY s.classroom_id, pc.session_id, pc.user_id
HAVING min(pc.since) < now() - @settle::interval
ON CONFLICT (session_id, user_id) WHERE left_at IS NULL DO NOTHING
RETURNING classroom_id, session_id, user_id, role, joined_at;

-- name: AttendanceSpanCloseAbsent :many
-- Closes, now, the open cluster spans (no node_id) of users with no presence row left on
-- any node, opened longer than settle ago: a span end the writer queued but a crash lost.
UPDATE attendance_spans a
SET left_at = greatest(a.joined_at, now())
WHERE a.node_id IS NULL AND a.left_at IS NULL AND a.joined_at < now() - @settle::interval
  AND NOT EXISTS (SELECT 1 FROM presence_connections pc WHERE pc.session_id = a.session_id AND pc.user_id = a.user_id)
RETURNING a.classroom_id, a.session_id, a.user_id, a.role, a.joined_at, a.left_at::timestamptz AS left_at;

-- name: AttendanceSessionList :many
-- One page of a session's attendance, one row per user: spans merged, newest first by
-- (first join, first span id). present_seconds counts an open span up to now; last_left_at
-- means nothing while connected (an open span).
SELECT a.user_id,
       (array_agg(a.name ORDER BY a.joined_at DESC))[1]::text AS name,
       (array_agg(a.role ORDER BY a.joined_at DESC))[1]::text AS role,
       min(a.joined_at)::timestamptz AS first_joined_at,
       (array_agg(a.id ORDER BY a.joined_at, a.id))[1]::uuid AS first_span_id,
       bool_or(a.left_at IS NULL)::bool AS connected,
       coalesce(max(a.left_at), min(a.joined_at))::timestamptz AS last_left_at,
       floor(sum(extract(epoch FROM coalesce(a.left_at, now()) - a.joined_at)))::bigint AS present_seconds,
       count(*)::int AS joins
FROM attendance_spans a
WHERE a.session_id = @session_id
GROUP BY a.user_id
HAVING (min(a.joined_at), (array_agg(a.id ORDER BY a.joined_at, a.id))[1]) < (@before_time::timestamptz, @before_id::uuid)
ORDER BY first_joined_at DESC, first_span_id DESC
LIMIT @lim;
