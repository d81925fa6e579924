/** The close codes of the presence WebSocket and what a client does on each (asyncapi info.x-close-codes). */
export const closeCodes = [
    {
        "code": 4400,
        "reason": "bad_request",
        "action": "stop"
    },
    {
        "code": 4401,
        "reason": "unauthorized",
        "action": "refresh_token"
    },
    {
        "code": 4401,
        "reason": "token_expired",
        "action": "refresh_token"
    },
    {
        "code": 4403,
        "reason": "forbidden",
        "action": "stop"
    },
    {
        "code": 4403,
        "reason": "session_ended",
        "action": "stop"
    },
    {
        "code": 4409,
        "reason": "too_many_connections",
        "action": "stop"
    },
    {
        "code": 4409,
        "reason": "session_full",
        "action": "stop"
    },
    {
        "code": 4429,
        "reason": "rate_limited",
        "action": "back_off"
    },
    {
        "code": 1001,
        "reason": "going_away",
        "action": "back_off"
    },
    {
        "code": 1011,
        "reason": "internal_error",
        "action": "back_off"
    },
    {
        "code": 1013,
        "reason": "slow_consumer",
        "action": "back_off"
    }
];
/** The subprotocol the server selects. */
export const subprotocol = "m4sh.presence.v1";
