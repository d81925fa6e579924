-- Attendance (README "Attendance"): each user's presence in a classroom session as spans,
-- first connection → leave, merged across tabs, nodes and the leave grace. A span is opened
-- and closed in the transaction that records the presence transition (with the webhook job
-- reporting it), so at most one span per user and session is open.
CREATE TABLE attendance_spans (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    classroom_id uuid NOT NULL,
    session_id   uuid NOT NULL REFERENCES classroom_sessions (id) ON DELETE CASCADE,
    user_id      text NOT NULL,
    name         text NOT NULL,
    role         text NOT NULL,
    joined_at    timestamptz NOT NULL DEFAULT now(),
    left_at      timestamptz,
    CHECK (left_at IS NULL OR left_at >= joined_at)
);

CREATE UNIQUE INDEX attendance_spans_open_idx ON attendance_spans (session_id, user_id) WHERE left_at IS NULL;
CREATE INDEX attendance_spans_session_idx ON attendance_spans (session_id, user_id, joined_at);
