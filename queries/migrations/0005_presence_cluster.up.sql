-- Presence shared by the nodes of a cluster (issue 9). Each node records, per classroom
-- session, the users it has connections for and how many; presence_nodes holds each node's
-- heartbeat. Rows of a node whose heartbeat is older than the purge age are deleted by any
-- live node, which then publishes the leave events. A user is present in a session when any
-- live node has a row for them.
CREATE TABLE presence_nodes (
    node_id uuid PRIMARY KEY,
    seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE presence_connections (
    node_id    uuid NOT NULL,
    session_id uuid NOT NULL,
    user_id    text NOT NULL,
    name       text NOT NULL,
    role       text NOT NULL,
    conns      integer NOT NULL CHECK (conns > 0),
    PRIMARY KEY (session_id, user_id, node_id)
);

CREATE INDEX presence_connections_node_idx ON presence_connections (node_id);
