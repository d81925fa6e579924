/** How far `webhook-timestamp` may be from the receiver's clock, in seconds. */
export const webhookToleranceSeconds = 5 * 60;
/** Why verifyWebhook refused a request. */
export class WebhookVerificationError extends Error {
    reason;
    constructor(reason, message) {
        super(message);
        this.reason = reason;
        this.name = "WebhookVerificationError";
    }
}
function header(h, name) {
    if (typeof h.get === "function")
        return h.get(name) ?? undefined;
    const rec = h;
    const v = rec[name] ?? Object.entries(rec).find(([k]) => k.toLowerCase() === name)?.[1];
    return Array.isArray(v) ? v[0] : v;
}
function fromBase64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++)
        out[i] = bin.charCodeAt(i);
    return out;
}
function equal(a, b) {
    if (a.length !== b.length)
        return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++)
        diff |= a[i] ^ b[i];
    return diff === 0;
}
/**
 * Verifies a webhook request and returns its parsed event. `secret` is the service's
 * WEBHOOK_SECRET (`whsec_…`); `body` is the raw request body exactly as received (string or
 * bytes — never a re-serialised object). Throws WebhookVerificationError when the headers
 * are missing, the timestamp is more than 5 minutes off, or no `v1` signature matches.
 */
export async function verifyWebhook(secret, headers, body, opts = {}) {
    if (!secret.startsWith("whsec_")) {
        throw new WebhookVerificationError("secret", 'secret must be "whsec_" followed by base64');
    }
    let key;
    try {
        key = fromBase64(secret.slice("whsec_".length));
    }
    catch {
        throw new WebhookVerificationError("secret", "secret is not valid base64 after whsec_");
    }
    const id = header(headers, "webhook-id");
    const ts = header(headers, "webhook-timestamp");
    const sigs = header(headers, "webhook-signature");
    if (!id || !ts || !sigs) {
        throw new WebhookVerificationError("headers", "missing webhook-id, webhook-timestamp or webhook-signature");
    }
    const seconds = Number(ts);
    const now = (opts.now ?? Date.now()) / 1000;
    if (!/^\d+$/.test(ts) || Math.abs(now - seconds) > webhookToleranceSeconds) {
        throw new WebhookVerificationError("timestamp", "webhook-timestamp is malformed or too far from now");
    }
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const prefix = new TextEncoder().encode(`${id}.${ts}.`);
    const signed = new Uint8Array(prefix.length + bytes.length);
    signed.set(prefix);
    signed.set(bytes, prefix.length);
    const hmacKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const want = new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, signed));
    const ok = sigs.split(" ").some((s) => {
        const [version, b64] = s.split(",", 2);
        if (version !== "v1" || !b64)
            return false;
        try {
            return equal(fromBase64(b64), want);
        }
        catch {
            return false;
        }
    });
    if (!ok)
        throw new WebhookVerificationError("signature", "no webhook-signature matches");
    try {
        return JSON.parse(new TextDecoder().decode(bytes));
    }
    catch {
        throw new WebhookVerificationError("body", "the body is not JSON");
    }
}
