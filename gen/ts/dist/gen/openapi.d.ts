export interface paths {
    "/api/v1/classrooms/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Classrooms where the caller is tutor or member, newest first. */
        get: operations["ClassroomList"];
        put?: never;
        /** Create a classroom; the caller becomes its tutor. */
        post: operations["ClassroomCreate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/classrooms/{class_id}/": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
            };
            cookie?: never;
        };
        /** One classroom (tutor or member). */
        get: operations["ClassroomGet"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/classrooms/{class_id}/members/": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
            };
            cookie?: never;
        };
        /**
         * The roster (tutor or member). The tutor comes first with role `tutor`.
         * @description Not paginated: a classroom holds at most `CLASSROOM_MAX_MEMBERS` members (default 500),
         *     so the roster is bounded. Members are ordered by `joined_at`, then `user_id`.
         */
        get: operations["ClassroomMemberList"];
        put?: never;
        /**
         * Add a member (tutor only). Idempotent.
         * @description `201` when the user becomes a member, `200` when already one. A user id never seen
         *     before is recorded (users are created on first sight). Adding the tutor is `409`;
         *     adding past `CLASSROOM_MAX_MEMBERS` is `409`.
         */
        post: operations["ClassroomMemberAdd"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/classrooms/{class_id}/members/{user_id}/": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                user_id: components["schemas"]["UserID"];
            };
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Remove a member (tutor only); their live connections to the classroom close with 4403. */
        delete: operations["ClassroomMemberRemove"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/classrooms/{class_id}/sessions/": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
            };
            cookie?: never;
        };
        /** Sessions of a classroom, newest first (tutor or member). */
        get: operations["ClassroomSessionList"];
        put?: never;
        /** Start a session (tutor only). */
        post: operations["ClassroomSessionCreate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/classrooms/{class_id}/sessions/{session_id}/": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                session_id: components["parameters"]["SessionID"];
            };
            cookie?: never;
        };
        /** One session (tutor or member). */
        get: operations["ClassroomSessionGet"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /** End a session (tutor only). Ending an ended session changes nothing. */
        patch: operations["ClassroomSessionUpdate"];
        trace?: never;
    };
    "/api/v1/classrooms/{class_id}/sessions/{session_id}/attendance/": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                session_id: components["parameters"]["SessionID"];
            };
            cookie?: never;
        };
        /**
         * Who attended the session and for how long (tutor only).
         * @description One row per user who was present in the session over its WebSocket: their presence
         *     spans (first connection → leave) merged across tabs, nodes and the leave grace
         *     (`WS_LEAVE_GRACE`; a reconnect within it continues the same span). A span ends at the
         *     leave (after the grace), at the last heartbeat of a node that died, or when the
         *     service shut down. `last_left_at` is null while the user is connected, and
         *     `present_seconds` (whole seconds) then counts up to now. `joins` is the number of
         *     spans. Rows come newest first join first.
         *
         *     Only the classroom's tutor may read it: a member gets `403 forbidden`, anyone else
         *     `404 not_found`.
         *
         *     With `Accept: text/csv` ranked above `application/json` the same rows come as CSV
         *     (RFC 4180, a header line, every row of the session in one streamed answer; `limit`
         *     and `cursor` apply to JSON only). A CSV cell starting with `=`, `+`, `-`, `@`, a tab
         *     or a carriage return is prefixed with `'` (no spreadsheet runs it as a formula). Any
         *     other `Accept` gets JSON, paginated like every list.
         */
        get: operations["ClassroomSessionAttendance"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/classrooms/{class_id}/sessions/{session_id}/presence/": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                session_id: components["parameters"]["SessionID"];
            };
            cookie?: never;
        };
        /**
         * Who is connected to the session's WebSocket now (tutor or member).
         * @description One entry per user, however many connections (tabs) they have open, ordered by
         *     user id. The live feed of the same information is the WebSocket described in
         *     `/asyncapi.yaml`.
         */
        get: operations["ClassroomSessionPresence"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/dev/tokens/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Dev only: mint a short-lived access token for any user id.
         * @description **Exists only with `DEV_TOKENS=1`** (see the `dev` tag); otherwise `404` like any
         *     unknown path. Signs an HS256 access token with the dev secret for `user_id`, valid for
         *     15 minutes (`expires_in`); `name` defaults to the dev user's name, else the user id.
         *     Mint a new one when the API answers `401` or the WebSocket closes with `4401`.
         */
        post: operations["DevTokenCreate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/dev/users/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Dev only: the users the demo's sign-in picker offers.
         * @description **Exists only with `DEV_TOKENS=1`** (see the `dev` tag); otherwise `404` like any
         *     unknown path. The role is a suggestion for the demo: a classroom's tutor is whoever
         *     creates it.
         */
        get: operations["DevUserList"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/logs/telemetry/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Ingest client telemetry (public, throttled, best-effort storage).
         * @description Public: no token needed. A valid bearer token attaches its user id to the events; an
         *     invalid or expired one is ignored (never a 401).
         *
         *     The body is one `TelemetryEvent` or a `TelemetryBatch` of at most 100 events, sent as
         *     `application/json` or as `text/plain` (what `navigator.sendBeacon` sends for a string).
         *
         *     Checks run cheapest first, and the first failure answers:
         *     1. **Throttle**: at most `TELEMETRY_RATE_PER_MIN` (300) requests per minute per client
         *        (a sliding one-minute window) → `429 rate_limited` with `Retry-After`, before any
         *        of the body is read. The client is the peer address, or — when the peer is one of
         *        `TRUSTED_PROXIES` — the first untrusted address walking `X-Forwarded-For` from the
         *        right. IPv6 clients are counted per /64.
         *     2. **Encoding**: `Content-Encoding` absent, `identity` or `gzip`, and `Content-Type`
         *        `application/json` or `text/plain` → else `415 unsupported_media_type`.
         *     3. **Size**: at most `TELEMETRY_MAX_BYTES` (32768) bytes as sent **and** after gzip
         *        inflation, enforced while streaming → `413 payload_too_large` as soon as either is
         *        crossed (a gzip bomb is never inflated past the limit). A corrupt gzip stream is a
         *        `400 validation_error`.
         *     4. **JSON and schema**: UTF-8 JSON matching `TelemetryPayload`; `props` may nest at
         *        most 32 levels and no string may contain U+0000 → `400 validation_error` naming
         *        the fields.
         *     5. `204`: the events are queued for storage. Storage is best effort and asynchronous;
         *        when the server's buffer is full the events are dropped, counted in metrics and in
         *        the `X-Telemetry-Dropped` response header.
         *
         *     CORS: any origin may call this route. `OPTIONS` preflight requests are answered
         *     `204` with `Access-Control-Allow-Origin: *`, `Access-Control-Allow-Methods: POST,
         *     OPTIONS`, `Access-Control-Allow-Headers: Content-Type, Content-Encoding,
         *     Authorization` and `Access-Control-Max-Age: 86400` by the transport, in front of
         *     this document's validation; every response of this route carries
         *     `Access-Control-Allow-Origin: *`.
         */
        post: operations["TelemetryIngest"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/me/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The authenticated caller. */
        get: operations["MeGet"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/sessions/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's solo sessions, newest first. */
        get: operations["SoloSessionList"];
        put?: never;
        /** Create a solo session owned by the caller. */
        post: operations["SoloSessionCreate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/sessions/{session_id}/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One of the caller's solo sessions. */
        get: operations["SoloSessionGet"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/sessions/{session_id}/snapshot/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Save a snapshot revision of the session.
         * @description The body is the snapshot document, stored byte for byte together with its
         *     `Content-Type` (any type; `application/octet-stream` when absent). Revisions count up
         *     from 1 per session, without gaps.
         *
         *     Limits, checked in this order: an empty body is `400`; a body over
         *     `SOLO_SNAPSHOT_MAX_BYTES` is `413` (from `Content-Length` when sent, otherwise as soon
         *     as the limit is crossed while reading); an upload that does not fit the caller's quota
         *     is `403 quota_exceeded` with `used`, `quota` and `remaining`. The body is stored as
         *     content-defined, compressed chunks deduplicated within the caller's storage, so an
         *     upload costs only the stored size of the chunks the caller does not have yet: before
         *     the body is read it is refused only when nothing of the quota remains, and after
         *     chunking when what it adds exceeds `remaining`. A refused upload stores nothing and
         *     charges nothing.
         *
         *     No double counting: a retry with the same `Idempotency-Key` (scoped to the session)
         *     answers `200` with the revision the key first produced; one sent while the first is
         *     still in flight is `409`; reusing a key with a different body is `409` too. A body
         *     identical (SHA-256) to the session's newest revision creates nothing and answers
         *     `200` with that revision.
         *
         *     A user has at most `SOLO_UPLOADS_IN_FLIGHT` (4) uploads in flight (per node); one more
         *     is `429 too_many_uploads` with `Retry-After`, answered before its body is read (with
         *     `Connection: close`). The body is buffered as it arrives, never sized from
         *     `Content-Length`.
         */
        post: operations["SoloSnapshotCreate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/sessions/{session_id}/snapshot/latest/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The newest revision's bytes.
         * @description The stored bytes with their `Content-Type`, `ETag: "<sha256>"` and
         *     `X-Snapshot-Revision`. `If-None-Match` with the current ETag answers `304`.
         *     A session without revisions is `404`.
         */
        get: operations["SoloSnapshotLatest"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/sessions/{session_id}/snapshots/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The session's revisions, newest first. */
        get: operations["SoloSnapshotList"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/sessions/{session_id}/snapshots/{revision}/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One revision's bytes (404 once retention removed it). */
        get: operations["SoloSnapshotGet"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/sessions/{session_id}/snapshots/{revision}/pin/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Pin a revision (with an optional label) so retention never removes it.
         * @description A pinned revision is never removed by retention and does not count toward its
         *     `keep_last`. Pinning a pinned revision again replaces its label (none: no label). At
         *     most 50 revisions of a session are pinned; pinning one more is `409`.
         */
        post: operations["SoloSnapshotPin"];
        /** Unpin a revision (its label goes too); retention treats it like any other again. */
        delete: operations["SoloSnapshotUnpin"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/sessions/{session_id}/snapshots/{revision}/restore/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Make a revision's content the session's newest revision.
         * @description Creates a new revision with the bytes, `Content-Type` and SHA-256 of `revision`, and
         *     `restored_from` set to it; the previous newest revision stays, so a restore is undone
         *     by restoring that one. The new revision shares the source's chunks: it adds nothing to
         *     the caller's storage (`stored_bytes` 0). Restoring the content the newest revision
         *     already has creates nothing and answers `200` with the newest revision. A revision
         *     stored before chunking is restored by storing its bytes as chunks, charged like an
         *     upload (`403 quota_exceeded` when they do not fit).
         */
        post: operations["SoloSnapshotRestore"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/solo/storage/": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's snapshot storage usage and quota, in bytes. */
        get: operations["SoloStorageGet"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness — the process is up. */
        get: operations["HealthCheck"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Readiness — the database is reachable and migrations are current.
         * @description Answers from a result at most 1 s old, computed by one round of checks at a time on
         *     connections of its own (never the API's), so a flood of `/readyz` neither makes the
         *     service unready nor slows the API.
         */
        get: operations["ReadyCheck"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        AttendancePage: {
            items: components["schemas"]["AttendanceRow"][];
            /** @description Absent on the last page. */
            next_cursor?: string;
        };
        /** @description One user's attendance in a session, their presence spans merged. */
        AttendanceRow: {
            /**
             * Format: date-time
             * @description The start of the user's first span.
             */
            first_joined_at: string;
            /** @description How many spans (separate presences) the user had. */
            joins: number;
            /**
             * Format: date-time
             * @description The end of the user's last span; null while connected.
             */
            last_left_at: string | null;
            name: string;
            /**
             * Format: int64
             * @description Whole seconds present, over all spans; an open span counts up to now.
             */
            present_seconds: number;
            role: components["schemas"]["Role"];
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @example {
         *       "id": "5f0c2a9e-7b1d-4e8a-9c3f-2d6e8a1b4c70",
         *       "title": "Physics 101",
         *       "tutor_id": "tina",
         *       "created_at": "2026-03-02T09:00:00Z"
         *     }
         */
        Classroom: {
            /** Format: date-time */
            created_at: string;
            /** Format: uuid */
            id: string;
            title: string;
            tutor_id: components["schemas"]["UserID"];
        };
        /**
         * @example {
         *       "title": "Physics 101"
         *     }
         */
        ClassroomCreate: {
            title: components["schemas"]["Title"];
        };
        /**
         * @example {
         *       "items": [
         *         {
         *           "id": "5f0c2a9e-7b1d-4e8a-9c3f-2d6e8a1b4c70",
         *           "title": "Physics 101",
         *           "tutor_id": "tina",
         *           "created_at": "2026-03-02T09:00:00Z"
         *         }
         *       ],
         *       "next_cursor": "eyJ0IjoiMjAyNi0wMy0wMlQwOTowMDowMFoifQ"
         *     }
         */
        ClassroomPage: {
            items: components["schemas"]["Classroom"][];
            /** @description Absent on the last page. */
            next_cursor?: string;
        };
        /**
         * @example {
         *       "id": "0b6f1a52-8d3e-4c55-9f0e-3f7c2a1d9b40",
         *       "classroom_id": "5f0c2a9e-7b1d-4e8a-9c3f-2d6e8a1b4c70",
         *       "title": "Lesson 1",
         *       "status": "active",
         *       "started_at": "2026-03-02T10:00:00Z",
         *       "ended_at": null
         *     }
         */
        ClassroomSession: {
            /** Format: uuid */
            classroom_id: string;
            /** Format: date-time */
            ended_at: string | null;
            /** Format: uuid */
            id: string;
            /** Format: date-time */
            started_at: string;
            status: components["schemas"]["SessionStatus"];
            title: string;
        };
        /**
         * @example {
         *       "title": "Lesson 1"
         *     }
         */
        ClassroomSessionCreate: {
            /**
             * @description Optional; absent or `""` means none. Control (Cc) and format (Cf) characters are
             *     removed and white space trimmed; a non-empty title left empty by that is 400.
             */
            title?: string;
        };
        /**
         * @example {
         *       "items": [
         *         {
         *           "id": "0b6f1a52-8d3e-4c55-9f0e-3f7c2a1d9b40",
         *           "classroom_id": "5f0c2a9e-7b1d-4e8a-9c3f-2d6e8a1b4c70",
         *           "title": "Lesson 1",
         *           "status": "ended",
         *           "started_at": "2026-03-02T10:00:00Z",
         *           "ended_at": "2026-03-02T10:45:00Z"
         *         }
         *       ]
         *     }
         */
        ClassroomSessionPage: {
            items: components["schemas"]["ClassroomSession"][];
            /** @description Absent on the last page. */
            next_cursor?: string;
        };
        /**
         * @example {
         *       "status": "ended"
         *     }
         */
        ClassroomSessionUpdate: {
            /**
             * @description The only transition is active → ended.
             * @enum {string}
             */
            status: "ended";
        };
        /**
         * @example {
         *       "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0aW5hIn0.c2lnbmF0dXJl",
         *       "token_type": "Bearer",
         *       "expires_in": 900,
         *       "expires_at": "2026-11-30T21:15:00Z",
         *       "user_id": "tina",
         *       "name": "Tina"
         *     }
         */
        DevToken: {
            /** @description An HS256 access token signed with the dev secret. */
            access_token: string;
            /** Format: date-time */
            expires_at: string;
            /** @description Seconds the token is valid for (900). */
            expires_in: number;
            name: string;
            /** @enum {string} */
            token_type: "Bearer";
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @example {
         *       "user_id": "tina"
         *     }
         */
        DevTokenCreate: {
            /** @description Display name put in the token; defaults to the dev user's name, else the user id. */
            name?: string;
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @example {
         *       "user_id": "tina",
         *       "name": "Tina",
         *       "role": "tutor"
         *     }
         */
        DevUser: {
            name: string;
            role: components["schemas"]["Role"];
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @example {
         *       "items": [
         *         {
         *           "user_id": "tina",
         *           "name": "Tina",
         *           "role": "tutor"
         *         },
         *         {
         *           "user_id": "sam",
         *           "name": "Sam",
         *           "role": "student"
         *         }
         *       ]
         *     }
         */
        DevUserList: {
            items: components["schemas"]["DevUser"][];
        };
        FieldError: {
            /** @description Where: `body.title`, `query.limit`, `path.class_id`, `header.Content-Type`. */
            field: string;
            message: string;
        };
        /**
         * @example {
         *       "status": "ok",
         *       "checks": {
         *         "database": "ok",
         *         "migrations": "ok"
         *       }
         *     }
         */
        Health: {
            checks?: {
                [key: string]: string;
            };
            /** @enum {string} */
            status: "ok" | "unavailable";
        };
        /**
         * @example {
         *       "user_id": "tina",
         *       "name": "Tina"
         *     }
         */
        Me: {
            name: string;
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @example {
         *       "user_id": "sam",
         *       "name": "Sam",
         *       "role": "student",
         *       "joined_at": "2026-03-02T09:05:00Z"
         *     }
         */
        Member: {
            /** Format: date-time */
            joined_at: string;
            name: string;
            role: components["schemas"]["Role"];
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @example {
         *       "user_id": "sam"
         *     }
         */
        MemberAdd: {
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @example {
         *       "items": [
         *         {
         *           "user_id": "tina",
         *           "name": "Tina",
         *           "role": "tutor",
         *           "joined_at": "2026-03-02T09:00:00Z"
         *         },
         *         {
         *           "user_id": "sam",
         *           "name": "Sam",
         *           "role": "student",
         *           "joined_at": "2026-03-02T09:05:00Z"
         *         }
         *       ]
         *     }
         */
        MemberList: {
            items: components["schemas"]["Member"][];
        };
        /**
         * @example {
         *       "users": [
         *         {
         *           "user_id": "tina",
         *           "name": "Tina",
         *           "role": "tutor"
         *         },
         *         {
         *           "user_id": "sam",
         *           "name": "Sam",
         *           "role": "student"
         *         }
         *       ]
         *     }
         */
        Presence: {
            users: components["schemas"]["PresenceUser"][];
        };
        PresenceUser: {
            name: string;
            role: components["schemas"]["Role"];
            user_id: components["schemas"]["UserID"];
        };
        /** @description RFC 9457 problem details with a stable machine-readable `code`. */
        Problem: {
            /**
             * @description Stable machine code.
             * @enum {string}
             */
            code: "validation_error" | "unauthorized" | "forbidden" | "not_found" | "method_not_allowed" | "conflict" | "payload_too_large" | "unsupported_media_type" | "quota_exceeded" | "rate_limited" | "too_many_uploads" | "request_timeout" | "internal" | "unavailable" | "snapshot_data_lost";
            detail?: string;
            /** @description For `validation_error`, the offending fields. */
            errors?: components["schemas"]["FieldError"][];
            /** @description The request path. */
            instance?: string;
            request_id?: string;
            /** @example 400 */
            status: number;
            /** @example Request validation failed */
            title: string;
            /**
             * @description A URI reference naming the problem type.
             * @example https://m4sh.dev/problems/validation_error
             */
            type: string;
        } & {
            [key: string]: unknown;
        };
        QuotaExceededProblem: components["schemas"]["Problem"] & {
            /** Format: int64 */
            quota: number;
            /** Format: int64 */
            remaining: number;
            /** Format: int64 */
            used: number;
        };
        /** @enum {string} */
        Role: "tutor" | "student";
        /** @enum {string} */
        SessionStatus: "active" | "ended";
        /**
         * @example {
         *       "revision": 7,
         *       "id": "01a22d94-7349-79c2-98d4-87e50d9d9eca",
         *       "size_bytes": 1070242,
         *       "stored_bytes": 48211,
         *       "sha256": "6d2f1a0c9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817060504",
         *       "content_type": "application/json",
         *       "created_at": "2026-11-30T17:53:04.434586Z",
         *       "pinned": false
         *     }
         */
        Snapshot: {
            content_type: string;
            /** Format: date-time */
            created_at: string;
            /** Format: uuid */
            id: string;
            /** @description The pin's label, when it has one. */
            label?: string;
            /** @description Pinned revisions are never removed by retention and do not count toward `keep_last`. */
            pinned: boolean;
            /**
             * Format: int32
             * @description The revision whose content this one restored, when it was made by a restore.
             */
            restored_from?: number;
            /** Format: int32 */
            revision: number;
            /** @description Lowercase hex SHA-256 of the bytes. */
            sha256: string;
            /**
             * Format: int64
             * @description The revision's logical size (what a read returns).
             */
            size_bytes: number;
            /**
             * Format: int64
             * @description What the revision added to its owner's storage when it was created (the stored size of the chunks it was first to store; 0 for a restore).
             */
            stored_bytes: number;
        };
        /**
         * @example {
         *       "id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
         *       "session_id": "9d2e4f61-3a8b-4c7d-8e1f-5a6b7c8d9e01",
         *       "revision": 3,
         *       "size_bytes": 4,
         *       "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
         *       "content_type": "application/json",
         *       "created_at": "2026-03-02T11:20:00Z",
         *       "stored_bytes": 4,
         *       "pinned": false,
         *       "storage": {
         *         "used": 2048,
         *         "quota": 104857600,
         *         "remaining": 104855552
         *       }
         *     }
         */
        SnapshotCreated: {
            content_type: string;
            /** Format: date-time */
            created_at: string;
            /** Format: uuid */
            id: string;
            label?: string;
            pinned: boolean;
            /** Format: int32 */
            restored_from?: number;
            /** Format: int32 */
            revision: number;
            /** Format: uuid */
            session_id: string;
            sha256: string;
            /** Format: int64 */
            size_bytes: number;
            storage: components["schemas"]["SoloStorage"];
            /**
             * Format: int64
             * @description What the revision added to the caller's storage when it was created.
             */
            stored_bytes: number;
        };
        /**
         * @example {
         *       "items": [
         *         {
         *           "revision": 3,
         *           "id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
         *           "size_bytes": 4,
         *           "stored_bytes": 4,
         *           "pinned": false,
         *           "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
         *           "content_type": "application/json",
         *           "created_at": "2026-03-02T11:20:00Z"
         *         }
         *       ]
         *     }
         */
        SnapshotPage: {
            items: components["schemas"]["Snapshot"][];
            next_cursor?: string;
        };
        SnapshotPin: {
            /** @description A short name for the pinned revision. */
            label?: string;
        };
        /**
         * @example {
         *       "id": "9d2e4f61-3a8b-4c7d-8e1f-5a6b7c8d9e01",
         *       "title": "Notes",
         *       "created_at": "2026-03-02T11:00:00Z"
         *     }
         */
        SoloSession: {
            /** Format: date-time */
            created_at: string;
            /** Format: uuid */
            id: string;
            title: string;
        };
        /**
         * @example {
         *       "title": "Notes"
         *     }
         */
        SoloSessionCreate: {
            /**
             * @description Optional; absent or `""` means none. Control (Cc) and format (Cf) characters are
             *     removed and white space trimmed; a non-empty title left empty by that is 400.
             */
            title?: string;
        };
        /**
         * @example {
         *       "items": [
         *         {
         *           "id": "9d2e4f61-3a8b-4c7d-8e1f-5a6b7c8d9e01",
         *           "title": "Notes",
         *           "created_at": "2026-03-02T11:00:00Z"
         *         }
         *       ]
         *     }
         */
        SoloSessionPage: {
            items: components["schemas"]["SoloSession"][];
            next_cursor?: string;
        };
        /**
         * @example {
         *       "used": 2048,
         *       "quota": 104857600,
         *       "remaining": 104855552
         *     }
         */
        SoloStorage: {
            /** Format: int64 */
            quota: number;
            /**
             * Format: int64
             * @description `quota - used`, never below 0 (a quota may be lowered below usage).
             */
            remaining: number;
            /**
             * Format: int64
             * @description Stored (compressed) bytes of the distinct chunks the caller's revisions refer to.
             */
            used: number;
        };
        /**
         * @example {
         *       "events": [
         *         {
         *           "name": "editor.opened",
         *           "level": "info",
         *           "session_id": "tab-7f3a"
         *         },
         *         {
         *           "name": "stroke.saved",
         *           "ts": "2026-03-02T11:20:00Z",
         *           "props": {
         *             "points": 42
         *           }
         *         }
         *       ]
         *     }
         */
        TelemetryBatch: {
            events: components["schemas"]["TelemetryEvent"][];
        };
        /** @description One client event. */
        TelemetryEvent: {
            /** @enum {string} */
            level?: "debug" | "info" | "warn" | "error";
            /** @example editor.opened */
            name: string;
            /** @description Free-form properties, stored as jsonb (nesting at most 32 levels). */
            props?: {
                [key: string]: unknown;
            };
            /** @description The client's own session identifier (free form). */
            session_id?: string;
            /**
             * Format: date-time
             * @description When the event happened (RFC 3339), by the client's clock; the server's receive time when absent.
             */
            ts?: string;
        };
        /** @description One event, or a batch of at most 100 (an object with `events`). */
        TelemetryPayload: components["schemas"]["TelemetryEvent"] | components["schemas"]["TelemetryBatch"];
        /**
         * @description 1..200 characters. Control (Cc) and format (Cf) characters are removed and white
         *     space trimmed; a title left empty by that is 400 `validation_error`.
         */
        Title: string;
        /**
         * @description Canonical string form of the token's user claim: 1..128 bytes of UTF-8 without
         *     control (Cc) or format (Cf: zero-width, bidi overrides) characters and without
         *     leading or trailing white space. The same rule holds for a token's user id (else
         *     401) and for one sent to the API (else 400 `validation_error`).
         */
        UserID: string;
        /** @description Any webhook body, by `type`. */
        WebhookEvent: components["schemas"]["WebhookSessionEvent"] | components["schemas"]["WebhookParticipantEvent"] | components["schemas"]["WebhookQuotaExceededEvent"] | components["schemas"]["WebhookPingEvent"];
        WebhookEventBase: {
            /**
             * @description The event's id, also sent as `webhook-id`; the same on every attempt (drop duplicates by it).
             * @example msg_2b1f0c9e4a7d4e1f9c3b8a6d5e4f3a21
             */
            id: string;
            /**
             * Format: date-time
             * @description When the change happened (not when this attempt was sent).
             */
            timestamp: string;
            type: components["schemas"]["WebhookEventType"];
        };
        /**
         * @description Event types. `WEBHOOK_EVENTS` (a comma list of these names) limits what is sent;
         *     `participant.joined` and `participant.left` are sent once attendance is recorded.
         * @enum {string}
         */
        WebhookEventType: "session.started" | "session.ended" | "participant.joined" | "participant.left" | "solo.quota_exceeded" | "ping";
        WebhookParticipantData: {
            /** Format: uuid */
            classroom_id: string;
            /** Format: date-time */
            joined_at: string;
            /**
             * Format: date-time
             * @description Present in `participant.left`.
             */
            left_at?: string;
            role: components["schemas"]["Role"];
            /** Format: uuid */
            session_id: string;
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @description `participant.joined` and `participant.left`: an attendance span's start and end, after presence's leave grace (tabs and nodes merged).
         * @example {
         *       "type": "participant.joined",
         *       "id": "msg_7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f",
         *       "timestamp": "2026-11-30T15:01:00Z",
         *       "data": {
         *         "classroom_id": "0b8f6c1e-3a43-4f2e-9b7a-6a3f1d2c4e5f",
         *         "session_id": "5d7e9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
         *         "user_id": "mia",
         *         "role": "student",
         *         "joined_at": "2026-11-30T15:01:00Z"
         *       }
         *     }
         */
        WebhookParticipantEvent: components["schemas"]["WebhookEventBase"] & {
            data: components["schemas"]["WebhookParticipantData"];
        } & {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            type: "participant.joined" | "participant.left";
        };
        WebhookPingData: {
            message: string;
        };
        /**
         * @description `ping`: sent only by `m4sh webhooks test`.
         * @example {
         *       "type": "ping",
         *       "id": "msg_f0e1d2c3b4a5968778695a4b3c2d1e0f",
         *       "timestamp": "2026-11-30T15:00:00Z",
         *       "data": {
         *         "message": "m4sh webhooks test"
         *       }
         *     }
         */
        WebhookPingEvent: components["schemas"]["WebhookEventBase"] & {
            data: components["schemas"]["WebhookPingData"];
        } & {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            type: "ping";
        };
        WebhookQuotaExceededData: {
            /** Format: int64 */
            quota: number;
            /** Format: int64 */
            remaining: number;
            /**
             * Format: uuid
             * @description The solo session the refused snapshot was for.
             */
            session_id: string;
            /** Format: int64 */
            used: number;
            user_id: components["schemas"]["UserID"];
        };
        /**
         * @description `solo.quota_exceeded`: a snapshot upload was refused with 403 `quota_exceeded`.
         * @example {
         *       "type": "solo.quota_exceeded",
         *       "id": "msg_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
         *       "timestamp": "2026-11-30T15:30:00Z",
         *       "data": {
         *         "user_id": "alice",
         *         "session_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
         *         "used": 104857000,
         *         "quota": 104857600,
         *         "remaining": 600
         *       }
         *     }
         */
        WebhookQuotaExceededEvent: components["schemas"]["WebhookEventBase"] & {
            data: components["schemas"]["WebhookQuotaExceededData"];
        } & {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            type: "solo.quota_exceeded";
        };
        WebhookSessionData: {
            /** Format: uuid */
            classroom_id: string;
            /**
             * Format: date-time
             * @description Present in `session.ended`.
             */
            ended_at?: string;
            /** Format: uuid */
            session_id: string;
            /** Format: date-time */
            started_at: string;
            title: string;
            tutor_id: components["schemas"]["UserID"];
        };
        /**
         * @description `session.started` (a session was created) and `session.ended` (its transition to ended; ending an ended session sends nothing).
         * @example {
         *       "type": "session.ended",
         *       "id": "msg_2b1f0c9e4a7d4e1f9c3b8a6d5e4f3a21",
         *       "timestamp": "2026-11-30T16:00:00Z",
         *       "data": {
         *         "classroom_id": "0b8f6c1e-3a43-4f2e-9b7a-6a3f1d2c4e5f",
         *         "session_id": "5d7e9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
         *         "title": "Week 1",
         *         "tutor_id": "tina",
         *         "started_at": "2026-11-30T15:00:00Z",
         *         "ended_at": "2026-11-30T16:00:00Z"
         *       }
         *     }
         */
        WebhookSessionEvent: components["schemas"]["WebhookEventBase"] & {
            data: components["schemas"]["WebhookSessionData"];
        } & {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            type: "session.started" | "session.ended";
        };
    };
    responses: {
        /** @description The request conflicts with the resource's state (`conflict`). */
        Conflict: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description Any other error, as problem+json. */
        Error: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The caller may see the resource but not change it (`forbidden`). */
        Forbidden: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description An upload with the same `Idempotency-Key` is still in flight, or the key was used
         *     with a different body (`conflict`).
         */
        IdempotencyConflict: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description No such resource, or one the caller may not see (`not_found`). */
        NotFound: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The JSON body is over 64 KiB (`payload_too_large`), refused from `Content-Length`
         *     before it is read when that is declared, otherwise as soon as the limit is crossed;
         *     the connection is then closed.
         */
        PayloadTooLarge: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "type": "https://m4sh.dev/problems/payload_too_large",
                 *       "title": "Payload too large",
                 *       "status": 413,
                 *       "code": "payload_too_large",
                 *       "detail": "the request body exceeds 65536 bytes",
                 *       "instance": "/api/v1/classrooms/"
                 *     }
                 */
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The session already has 50 pinned revisions (`conflict`); unpin one first. */
        PinLimit: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The upload does not fit the caller's storage quota (`quota_exceeded`); nothing was
         *     stored. `used`, `quota` and `remaining` (bytes) are top-level members.
         */
        QuotaExceeded: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["QuotaExceededProblem"];
            };
        };
        /**
         * @description The request body did not arrive within `HTTP_BODY_TIMEOUT` (default 30 s) of the
         *     request's start (`request_timeout`). The connection is closed after this answer.
         */
        RequestTimeout: {
            headers: {
                /** @description Always `close`. */
                Connection?: "close";
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "type": "https://m4sh.dev/problems/request_timeout",
                 *       "title": "Request timeout",
                 *       "status": 408,
                 *       "code": "request_timeout",
                 *       "detail": "the request body did not arrive within 30s",
                 *       "instance": "/api/v1/classrooms/"
                 *     }
                 */
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The revision's bytes, with the Content-Type they were saved with. */
        SnapshotBytes: {
            headers: {
                /** @description The quoted SHA-256 (hex) of the bytes. */
                ETag?: string;
                /** @description The revision number. */
                "X-Snapshot-Revision"?: number;
                [name: string]: unknown;
            };
            content: {
                /** @example {"strokes":[[0,0],[3,4]]} */
                "*/*": string;
            };
        };
        /** @description The client's ETag matches; no body. */
        SnapshotNotModified: {
            headers: {
                ETag?: string;
                "X-Snapshot-Revision"?: number;
                [name: string]: unknown;
            };
            content?: never;
        };
        /** @description The body exceeds `SOLO_SNAPSHOT_MAX_BYTES` (`payload_too_large`). */
        SnapshotTooLarge: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The revision exists but its bytes cannot be served now. `unavailable` (with
         *     `Retry-After`): the database or the blob store cannot be reached, or this node's
         *     snapshot reads already hold their memory budget (`SOLO_READ_MEMORY_BYTES`; a read
         *     waits up to 5 s for room first); retry.
         *     `snapshot_data_lost`: stored bytes the revision needs are missing from the blob store
         *     or do not match their SHA-256 — a fault of the service's storage, logged and alerted
         *     on, not something the request did; retrying will not help until an operator restores
         *     the data. The revision is not reported `404`: it was not deleted. A read either sends
         *     the whole revision or fails before its first byte, never a body shorter than its
         *     `Content-Length`.
         */
        SnapshotUnavailable: {
            headers: {
                /** @description Seconds to wait before retrying (`unavailable` only). */
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The caller already has `SOLO_UPLOADS_IN_FLIGHT` uploads in flight
         *     (`too_many_uploads`); nothing was read or stored. Retry after the `Retry-After` delay.
         */
        TooManyUploads: {
            headers: {
                /** @description Seconds to wait before retrying. */
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "type": "https://m4sh.dev/problems/too_many_uploads",
                 *       "title": "Too many uploads in flight",
                 *       "status": 429,
                 *       "code": "too_many_uploads",
                 *       "detail": "at most 4 uploads in flight per user; retry later",
                 *       "instance": "/api/v1/solo/sessions/0190f3b4-8c1e-7d2a-9b5e-3f1a2c4d5e6f/snapshot/"
                 *     }
                 */
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description No, invalid or expired bearer token (`unauthorized`). */
        Unauthorized: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description A dependency, usually PostgreSQL, cannot be reached (`unavailable`); nothing was
         *     changed. Retry after the `Retry-After` delay.
         */
        Unavailable: {
            headers: {
                /** @description Seconds to wait before retrying. */
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "type": "https://m4sh.dev/problems/unavailable",
                 *       "title": "Service unavailable",
                 *       "status": 503,
                 *       "code": "unavailable",
                 *       "detail": "Service unavailable",
                 *       "instance": "/api/v1/classrooms/"
                 *     }
                 */
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /** @description The request does not match this document (`validation_error`). */
        ValidationError: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
        /**
         * @description The caller created more than `API_WRITE_RATE_PER_MIN` (default 120) classrooms,
         *     members, classroom sessions and solo sessions, together, within a minute
         *     (`rate_limited`); refused before the body is read. Counted per node.
         */
        WriteRateLimited: {
            headers: {
                /** @description Seconds until the caller may create again. */
                "Retry-After"?: number;
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "type": "https://m4sh.dev/problems/rate_limited",
                 *       "title": "Too many requests",
                 *       "status": 429,
                 *       "code": "rate_limited",
                 *       "detail": "at most 120 creations per minute; retry later",
                 *       "instance": "/api/v1/classrooms/"
                 *     }
                 */
                "application/problem+json": components["schemas"]["Problem"];
            };
        };
    };
    parameters: {
        ClassID: string;
        /** @description Opaque cursor from the previous page's `next_cursor`. */
        Cursor: string;
        /** @description ETags the client holds; a match answers 304. */
        IfNoneMatch: string;
        /** @description Page size. */
        Limit: number;
        /** @description A revision number of the session. */
        Revision: number;
        SessionID: string;
        /** @description A solo session id. */
        SoloSessionID: string;
    };
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    ClassroomList: {
        parameters: {
            query?: {
                /** @description Opaque cursor from the previous page's `next_cursor`. */
                cursor?: components["parameters"]["Cursor"];
                /** @description Page size. */
                limit?: components["parameters"]["Limit"];
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of classrooms. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClassroomPage"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomCreate: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ClassroomCreate"];
            };
        };
        responses: {
            /** @description Created. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Classroom"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["WriteRateLimited"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomGet: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The classroom. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Classroom"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomMemberList: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The roster. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MemberList"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomMemberAdd: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MemberAdd"];
            };
        };
        responses: {
            /** @description Already a member. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Member"];
                };
            };
            /** @description Added. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Member"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["Conflict"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["WriteRateLimited"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomMemberRemove: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                user_id: components["schemas"]["UserID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomSessionList: {
        parameters: {
            query?: {
                /** @description Opaque cursor from the previous page's `next_cursor`. */
                cursor?: components["parameters"]["Cursor"];
                /** @description Page size. */
                limit?: components["parameters"]["Limit"];
            };
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of sessions. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClassroomSessionPage"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomSessionCreate: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["ClassroomSessionCreate"];
            };
        };
        responses: {
            /** @description Started. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClassroomSession"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["WriteRateLimited"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomSessionGet: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                session_id: components["parameters"]["SessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The session. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClassroomSession"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomSessionUpdate: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                session_id: components["parameters"]["SessionID"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ClassroomSessionUpdate"];
            };
        };
        responses: {
            /** @description The session after the change. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClassroomSession"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomSessionAttendance: {
        parameters: {
            query?: {
                /** @description Opaque cursor from the previous page's `next_cursor`. */
                cursor?: components["parameters"]["Cursor"];
                /** @description Page size. */
                limit?: components["parameters"]["Limit"];
            };
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                session_id: components["parameters"]["SessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of attendance (JSON), or every row (CSV). */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "items": [
                     *         {
                     *           "user_id": "sam",
                     *           "name": "Sam",
                     *           "role": "student",
                     *           "first_joined_at": "2026-11-30T15:02:10Z",
                     *           "last_left_at": null,
                     *           "present_seconds": 1690,
                     *           "joins": 2
                     *         },
                     *         {
                     *           "user_id": "tina",
                     *           "name": "Tina",
                     *           "role": "tutor",
                     *           "first_joined_at": "2026-11-30T15:00:04Z",
                     *           "last_left_at": "2026-11-30T15:58:31Z",
                     *           "present_seconds": 3507,
                     *           "joins": 1
                     *         }
                     *       ]
                     *     }
                     */
                    "application/json": components["schemas"]["AttendancePage"];
                    /**
                     * @example user_id,name,role,first_joined_at,last_left_at,present_seconds,joins
                     *     sam,Sam,student,2026-11-30T15:02:10Z,,1690,2
                     *     tina,Tina,tutor,2026-11-30T15:00:04Z,2026-11-30T15:58:31Z,3507,1
                     */
                    "text/csv": string;
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    ClassroomSessionPresence: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                class_id: components["parameters"]["ClassID"];
                session_id: components["parameters"]["SessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The users connected now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Presence"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    DevTokenCreate: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["DevTokenCreate"];
            };
        };
        responses: {
            /** @description The token. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DevToken"];
                };
            };
            400: components["responses"]["ValidationError"];
            404: components["responses"]["NotFound"];
            default: components["responses"]["Error"];
        };
    };
    DevUserList: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The dev users. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DevUserList"];
                };
            };
            404: components["responses"]["NotFound"];
            default: components["responses"]["Error"];
        };
    };
    TelemetryIngest: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TelemetryPayload"];
                /** @example {"name":"page.hidden","level":"debug"} */
                "text/plain": string;
            };
        };
        responses: {
            /** @description Accepted for (best-effort) storage. */
            204: {
                headers: {
                    /** @description How many of this request's events were dropped because the buffer was full (usually 0). */
                    "X-Telemetry-Dropped": number;
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["ValidationError"];
            408: components["responses"]["RequestTimeout"];
            /** @description The body exceeds `TELEMETRY_MAX_BYTES` as sent or inflated (`payload_too_large`). */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Unsupported `Content-Encoding` or `Content-Type` (`unsupported_media_type`). */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Too many requests from this client (`rate_limited`). */
            429: {
                headers: {
                    /** @description Seconds until the client may send again. */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            default: components["responses"]["Error"];
        };
    };
    MeGet: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The caller. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Me"];
                };
            };
            401: components["responses"]["Unauthorized"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSessionList: {
        parameters: {
            query?: {
                /** @description Opaque cursor from the previous page's `next_cursor`. */
                cursor?: components["parameters"]["Cursor"];
                /** @description Page size. */
                limit?: components["parameters"]["Limit"];
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of sessions. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SoloSessionPage"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSessionCreate: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SoloSessionCreate"];
            };
        };
        responses: {
            /** @description Created. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SoloSession"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            408: components["responses"]["RequestTimeout"];
            413: components["responses"]["PayloadTooLarge"];
            429: components["responses"]["WriteRateLimited"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSessionGet: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A solo session id. */
                session_id: components["parameters"]["SoloSessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The session. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SoloSession"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSnapshotCreate: {
        parameters: {
            query?: never;
            header?: {
                /** @description Client-chosen key that makes retries of this upload safe. */
                "Idempotency-Key"?: string;
            };
            path: {
                /** @description A solo session id. */
                session_id: components["parameters"]["SoloSessionID"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /** @example {"strokes":[[0,0],[3,4]]} */
                "*/*": string;
            };
        };
        responses: {
            /**
             * @description Nothing created: an `Idempotency-Key` replay, or a body identical to the newest
             *     revision. The existing revision and the current storage usage.
             */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SnapshotCreated"];
                };
            };
            /** @description The new revision and the storage usage after it. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SnapshotCreated"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["QuotaExceeded"];
            404: components["responses"]["NotFound"];
            408: components["responses"]["RequestTimeout"];
            409: components["responses"]["IdempotencyConflict"];
            413: components["responses"]["SnapshotTooLarge"];
            429: components["responses"]["TooManyUploads"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSnapshotLatest: {
        parameters: {
            query?: never;
            header?: {
                /** @description ETags the client holds; a match answers 304. */
                "If-None-Match"?: components["parameters"]["IfNoneMatch"];
            };
            path: {
                /** @description A solo session id. */
                session_id: components["parameters"]["SoloSessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: components["responses"]["SnapshotBytes"];
            304: components["responses"]["SnapshotNotModified"];
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["SnapshotUnavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSnapshotList: {
        parameters: {
            query?: {
                /** @description Opaque cursor from the previous page's `next_cursor`. */
                cursor?: components["parameters"]["Cursor"];
                /** @description Page size. */
                limit?: components["parameters"]["Limit"];
            };
            header?: never;
            path: {
                /** @description A solo session id. */
                session_id: components["parameters"]["SoloSessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One page of revisions. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SnapshotPage"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSnapshotGet: {
        parameters: {
            query?: never;
            header?: {
                /** @description ETags the client holds; a match answers 304. */
                "If-None-Match"?: components["parameters"]["IfNoneMatch"];
            };
            path: {
                revision: number;
                /** @description A solo session id. */
                session_id: components["parameters"]["SoloSessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: components["responses"]["SnapshotBytes"];
            304: components["responses"]["SnapshotNotModified"];
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["SnapshotUnavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSnapshotPin: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A revision number of the session. */
                revision: components["parameters"]["Revision"];
                /** @description A solo session id. */
                session_id: components["parameters"]["SoloSessionID"];
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                /**
                 * @example {
                 *       "label": "Before the proof"
                 *     }
                 */
                "application/json": components["schemas"]["SnapshotPin"];
            };
        };
        responses: {
            /** @description The revision, pinned. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "revision": 7,
                     *       "id": "01a22d94-7349-79c2-98d4-87e50d9d9eca",
                     *       "size_bytes": 1070242,
                     *       "stored_bytes": 48211,
                     *       "sha256": "6d2f1a0c9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817060504",
                     *       "content_type": "application/json",
                     *       "created_at": "2026-11-30T17:53:04.434586Z",
                     *       "pinned": true,
                     *       "label": "Before the proof"
                     *     }
                     */
                    "application/json": components["schemas"]["Snapshot"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            409: components["responses"]["PinLimit"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSnapshotUnpin: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A revision number of the session. */
                revision: components["parameters"]["Revision"];
                /** @description A solo session id. */
                session_id: components["parameters"]["SoloSessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The revision, unpinned (unpinning one that is not pinned changes nothing). */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Snapshot"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloSnapshotRestore: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A revision number of the session. */
                revision: components["parameters"]["Revision"];
                /** @description A solo session id. */
                session_id: components["parameters"]["SoloSessionID"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Nothing created; the newest revision already has this content. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SnapshotCreated"];
                };
            };
            /** @description The new revision and the storage usage after it. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "id": "01a22d96-c19a-798c-bd95-1efafa28bdb1",
                     *       "session_id": "dd01a801-dc7f-46c5-a3a7-57e18c388574",
                     *       "revision": 9,
                     *       "size_bytes": 1070242,
                     *       "stored_bytes": 0,
                     *       "sha256": "6d2f1a0c9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817060504",
                     *       "content_type": "application/json",
                     *       "created_at": "2026-11-30T18:02:11.120391Z",
                     *       "pinned": false,
                     *       "restored_from": 7,
                     *       "storage": {
                     *         "used": 1310720,
                     *         "quota": 104857600,
                     *         "remaining": 103546880
                     *       }
                     *     }
                     */
                    "application/json": components["schemas"]["SnapshotCreated"];
                };
            };
            400: components["responses"]["ValidationError"];
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["QuotaExceeded"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["SnapshotUnavailable"];
            default: components["responses"]["Error"];
        };
    };
    SoloStorageGet: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Usage. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SoloStorage"];
                };
            };
            401: components["responses"]["Unauthorized"];
            503: components["responses"]["Unavailable"];
            default: components["responses"]["Error"];
        };
    };
    HealthCheck: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Up. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
    ReadyCheck: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Ready. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description Not ready; `checks` says which dependency failed. */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
}
