export * from "./rest.js";
export * from "./errors.js";
export * from "./paginate.js";
export * from "./presence.js";
export type * from "./gen/ws.js";
export { closeCodes, subprotocol } from "./gen/ws.js";
export * from "./webhook.js";
export * from "./snapshots.js";
