import type { components } from "./gen/openapi.js";
/** Any webhook body, by `type` (see the OpenAPI document's Webhook* schemas). */
export type WebhookEvent = components["schemas"]["WebhookEvent"];
/** How far `webhook-timestamp` may be from the receiver's clock, in seconds. */
export declare const webhookToleranceSeconds: number;
/** Why verifyWebhook refused a request. */
export declare class WebhookVerificationError extends Error {
    readonly reason: "secret" | "headers" | "timestamp" | "signature" | "body";
    constructor(reason: "secret" | "headers" | "timestamp" | "signature" | "body", message: string);
}
/** Request headers as a Headers object or a plain record (Node's IncomingHttpHeaders works). */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;
export interface VerifyWebhookOptions {
    /** The receiver's clock in milliseconds (default Date.now()). */
    now?: number;
}
/**
 * Verifies a webhook request and returns its parsed event. `secret` is the service's
 * WEBHOOK_SECRET (`whsec_…`); `body` is the raw request body exactly as received (string or
 * bytes — never a re-serialised object). Throws WebhookVerificationError when the headers
 * are missing, the timestamp is more than 5 minutes off, or no `v1` signature matches.
 */
export declare function verifyWebhook(secret: string, headers: WebhookHeaders, body: string | Uint8Array, opts?: VerifyWebhookOptions): Promise<WebhookEvent>;
