-- name: UserUpsert :exec
-- Creates a user on first sight and keeps the display name current (a token without a name
-- keeps the stored one). The WHERE clause makes
-- a repeat sighting with the same name a no-op instead of a new row version.
INSERT INTO users (id, name) VALUES (@id, @name)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
WHERE EXCLUDED.name <> '' AND users.name IS DISTINCT FROM EXCLUDED.name;

-- name: UserGetByID :one
SELECT * FROM users WHERE id = @id;
