-- name: ClassroomCreate :one
INSERT INTO classrooms (title, tutor_id) VALUES (@title, @tutor_id)
RETURNING *;

-- name: ClassroomGetForUser :one
-- The classroom with the caller's role in it; no row when the caller is neither tutor nor
-- member (callers turn that into 404, so existence never leaks).
SELECT c.*,
       (CASE WHEN c.tutor_id = @user_id::text THEN 'tutor' ELSE 'student' END)::text AS role
FROM classrooms c
WHERE c.id = @id
  AND (c.tutor_id = @user_id::text
       OR EXISTS (SELECT 1 FROM classroom_members m WHERE m.classroom_id = c.id AND m.user_id = @user_id::text));

-- name: ClassroomListForUser :many
-- Classrooms where the user is tutor or member, newest first, keyset-paginated.
SELECT c.* FROM classrooms c
WHERE (c.tutor_id = @user_id::text
       OR EXISTS (SELECT 1 FROM classroom_members m WHERE m.classroom_id = c.id AND m.user_id = @user_id::text))
  AND (c.created_at, c.id) < (@before_time::timestamptz, @before_id::uuid)
ORDER BY c.created_at DESC, c.id DESC
LIMIT @lim;

-- name: ClassroomSessionRole :one
-- One indexed lookup for the WebSocket handshake: the caller's role in the classroom, and
-- whether the session exists in that classroom. No row: classroom missing or caller is
-- neither tutor nor member.
SELECT (CASE WHEN c.tutor_id = @user_id::text THEN 'tutor' ELSE 'student' END)::text AS role,
       (s.id IS NOT NULL)::boolean AS session_found,
       coalesce(s.status, '')::text AS session_status
FROM classrooms c
LEFT JOIN classroom_sessions s ON s.id = @session_id AND s.classroom_id = c.id
WHERE c.id = @classroom_id
  AND (c.tutor_id = @user_id::text
       OR EXISTS (SELECT 1 FROM classroom_members m WHERE m.classroom_id = c.id AND m.user_id = @user_id::text));

-- name: ClassroomMemberList :many
SELECT m.user_id, u.name, m.joined_at
FROM classroom_members m JOIN users u ON u.id = m.user_id
WHERE m.classroom_id = @classroom_id
ORDER BY m.joined_at, m.user_id;

-- name: ClassroomMemberCount :one
SELECT count(*) FROM classroom_members WHERE classroom_id = @classroom_id;

-- name: ClassroomMemberAdd :one
-- Adds a member; no row when already a member (the caller then reads the existing one).
INSERT INTO classroom_members (classroom_id, user_id) VALUES (@classroom_id, @user_id)
ON CONFLICT (classroom_id, user_id) DO NOTHING
RETURNING joined_at;

-- name: ClassroomMemberGet :one
SELECT m.user_id, u.name, m.joined_at
FROM classroom_members m JOIN users u ON u.id = m.user_id
WHERE m.classroom_id = @classroom_id AND m.user_id = @user_id;

-- name: ClassroomMemberRemove :execrows
DELETE FROM classroom_members WHERE classroom_id = @classroom_id AND user_id = @user_id;

-- name: ClassroomLockForUpdate :one
-- Serialises membership changes of one classroom (the member cap is checked under it).
SELECT id FROM classrooms WHERE id = @id FOR UPDATE;

-- name: UserEnsure :exec
-- Records a user id seen only as a reference (added as a member before ever signing in).
INSERT INTO users (id) VALUES (@id) ON CONFLICT (id) DO NOTHING;

-- name: ClassroomSessionCreate :one
INSERT INTO classroom_sessions (classroom_id, tutor_id, title)
VALUES (@classroom_id, @tutor_id, @title)
RETURNING *;

-- name: ClassroomSessionGet :one
SELECT * FROM classroom_sessions WHERE id = @id AND classroom_id = @classroom_id;

-- name: ClassroomSessionGetForUpdate :one
-- Locks a session while it is ended, so that only the transition reports session.ended.
SELECT * FROM classroom_sessions WHERE id = @id AND classroom_id = @classroom_id FOR UPDATE;

-- name: ClassroomSessionList :many
SELECT * FROM classroom_sessions
WHERE classroom_id = @classroom_id
  AND (started_at, id) < (@before_time::timestamptz, @before_id::uuid)
ORDER BY started_at DESC, id DESC
LIMIT @lim;

-- name: ClassroomSessionEnd :one
-- Ends an active session; an ended one is returned unchanged.
UPDATE classroom_sessions
SET status = 'ended', ended_at = coalesce(ended_at, now())
WHERE id = @id AND classroom_id = @classroom_id
RETURNING *;
