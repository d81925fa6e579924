-- The platform's pre-v0.31 schema, as it exists in production before this service took
-- over: users, classrooms with a tutor and members, and classroom sessions that know their
-- tutor and participants but not their classroom. 0002 adds and backfills that link.
CREATE TABLE users (
    id         text PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 128),
    name       text NOT NULL DEFAULT '' CHECK (char_length(name) <= 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE classrooms (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title      text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    tutor_id   text NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX classrooms_tutor_id_idx ON classrooms (tutor_id, created_at DESC, id DESC);

CREATE TABLE classroom_members (
    classroom_id uuid NOT NULL REFERENCES classrooms (id) ON DELETE CASCADE,
    user_id      text NOT NULL REFERENCES users (id),
    joined_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (classroom_id, user_id)
);
CREATE INDEX classroom_members_user_id_idx ON classroom_members (user_id);

CREATE TABLE classroom_sessions (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tutor_id   text NOT NULL REFERENCES users (id),
    title      text NOT NULL DEFAULT '' CHECK (char_length(title) <= 200),
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz,
    CHECK ((status = 'ended') = (ended_at IS NOT NULL))
);
CREATE INDEX classroom_sessions_tutor_id_idx ON classroom_sessions (tutor_id);

CREATE TABLE classroom_session_participants (
    session_id uuid NOT NULL REFERENCES classroom_sessions (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id),
    PRIMARY KEY (session_id, user_id)
);
