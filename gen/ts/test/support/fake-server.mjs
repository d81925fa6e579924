// A tiny WebSocket server on loopback (RFC 6455 by hand, no dependency) for what the real
// service cannot do on demand: close with any code, go away and come back on the same port,
// or never send a snapshot. Test support, not a test.
import { createServer } from "node:http";
import { createHash } from "node:crypto";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Starts a server on 127.0.0.1:port (0: any free port). onConnection(conn, n) runs for the
 * n-th accepted connection (0-based) of this server's whole life, across restarts.
 */
export async function startFakeServer({ port = 0, onConnection }) {
  const conns = [];
  const sockets = new Set();
  let http;
  const listen = () => new Promise((resolve, reject) => {
    http = createServer((_, res) => res.writeHead(404).end());
    http.on("upgrade", (req, socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      const key = req.headers["sec-websocket-key"];
      const offered = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
      const accept = createHash("sha1").update(key + GUID).digest("base64");
      const proto = offered.includes("m4sh.presence.v1") ? "Sec-WebSocket-Protocol: m4sh.presence.v1\r\n" : "";
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${proto}\r\n`);
      const conn = new FakeConn(socket, req.url, offered.find((p) => p.startsWith("bearer."))?.slice(7));
      conns.push(conn);
      onConnection?.(conn, conns.length - 1);
    });
    http.once("error", reject);
    http.listen(port, "127.0.0.1", () => {
      port = http.address().port;
      resolve();
    });
  });
  await listen();
  const server = {
    get port() { return port; },
    get url() { return `http://127.0.0.1:${port}`; },
    conns,
    /** Stops listening and drops every connection without a close frame (a crash). */
    async kill() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => http.close(r));
    },
    /** Listens again on the same port. */
    restart: listen,
  };
  return server;
}

/** One accepted connection: frames received (parsed JSON) and ways to answer. */
class FakeConn {
  constructor(socket, path, token) {
    this.socket = socket;
    this.path = path;
    this.token = token;
    this.received = [];
    this.closed = new Promise((r) => socket.on("close", r));
    let buf = Buffer.alloc(0);
    socket.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const f = parseFrame(buf);
        if (!f) break;
        buf = buf.subarray(f.size);
        if (f.opcode === 1) this.received.push(JSON.parse(f.payload.toString("utf8")));
        else if (f.opcode === 8) this.close(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1000);
        else if (f.opcode === 9) socket.write(frame(10, f.payload));
      }
    });
  }
  send(obj) {
    if (!this.socket.destroyed) this.socket.write(frame(1, Buffer.from(JSON.stringify(obj))));
  }
  snapshot(users = []) {
    this.send({ type: "presence.snapshot", session_id: "00000000-0000-4000-8000-000000000000", users });
  }
  /** Sends a close frame with code and reason, then ends the TCP connection. */
  close(code, reason = "") {
    if (this.socket.destroyed) return;
    const r = Buffer.from(reason);
    const p = Buffer.alloc(2 + r.length);
    p.writeUInt16BE(code, 0);
    r.copy(p, 2);
    this.socket.end(frame(8, p));
  }
}

function frame(opcode, payload) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n])
    : n < 65536 ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 255])
      : (() => { const h = Buffer.alloc(10); h[0] = 0x80 | opcode; h[1] = 127; h.writeBigUInt64BE(BigInt(n), 2); return h; })();
  return Buffer.concat([head, payload]);
}

/** Parses one (masked, unfragmented) client frame at the start of b, or null when incomplete. */
function parseFrame(b) {
  if (b.length < 2) return null;
  const opcode = b[0] & 15;
  let len = b[1] & 127;
  let off = 2;
  if (len === 126) {
    if (b.length < 4) return null;
    len = b.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (b.length < 10) return null;
    len = Number(b.readBigUInt64BE(2));
    off = 10;
  }
  const masked = (b[1] & 128) !== 0;
  const maskAt = off;
  if (masked) off += 4;
  if (b.length < off + len) return null;
  const payload = Buffer.from(b.subarray(off, off + len));
  if (masked) for (let i = 0; i < len; i++) payload[i] ^= b[maskAt + (i & 3)];
  return { opcode, payload, size: off + len };
}

/** A loopback port with nothing listening on it (bound, then released). */
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
