// Hand-written entry point of @m4sh/client. Generated sources live in src/gen/ only.
export * from "./rest.js";
export * from "./errors.js";
export * from "./paginate.js";
export * from "./presence.js";
export { closeCodes, subprotocol } from "./gen/ws.js";
export * from "./webhook.js";
export * from "./snapshots.js";
