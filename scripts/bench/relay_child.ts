/**
 * The child process of relay_floor.ts (`relay_child.ts <db file> <socket>`): its own read-only connection to the
 * relay's database and one permission-less worker; it answers the relay's calls over a Unix socket. Kept apart from
 * relay_floor.ts so that it loads nothing but itself (it runs with read and write access to the database's folder only).
 */

/** Server → child: one call. Child → server: its answer (the response body, or the document to insert). */
export type ToChild = { id: number; op: "noop" | "query" | "insert"; args: Record<string, unknown> };
export type FromChild = { id: number; text: string };

// ---------------------------------------------------------------------------------------------------------------
// Framing: a 4-byte big-endian length, then UTF-8 JSON (the same scheme as the server ⇄ runner bridge).

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function frameOf(message: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(message));
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  return frame;
}

/** Reads frames from `conn` and hands each message to `onMessage` until the connection ends. */
export async function readFrames(conn: Deno.Conn, onMessage: (message: unknown) => void): Promise<void> {
  const chunk = new Uint8Array(64 * 1024);
  let pending = new Uint8Array(0);
  for (;;) {
    const read = await conn.read(chunk);
    if (read === null) return;
    const bytes = pending.length === 0 ? chunk.subarray(0, read) : concat(pending, chunk.subarray(0, read));
    let offset = 0;
    while (bytes.length - offset >= 4) {
      const length = new DataView(bytes.buffer, bytes.byteOffset + offset).getUint32(0);
      if (bytes.length - offset - 4 < length) break;
      onMessage(JSON.parse(decoder.decode(bytes.subarray(offset + 4, offset + 4 + length))));
      offset += 4 + length;
    }
    pending = bytes.slice(offset);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/** Writes frames to `conn` in order, one write at a time. */
export function frameWriter(conn: Deno.Conn): (message: unknown) => void {
  let tail = Promise.resolve();
  return (message) => {
    const frame = frameOf(message);
    tail = tail.then(async () => {
      for (let offset = 0; offset < frame.length;) offset += await conn.write(frame.subarray(offset));
    });
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The worker: what user code would do with the call, and nothing more.

const WORKER_SOURCE = `
const answer = (id, text) => self.postMessage({ type: "answer", id, text });
self.onmessage = ({ data }) => {
  const { type, id, text } = data;
  if (type === "insert") {
    answer(id, JSON.stringify({ ...JSON.parse(text), _creationTime: Date.now() }));
  } else if (type === "noop") {
    answer(id, JSON.stringify({ status: "success", value: null, logLines: [] }));
  } else if (type === "query") {
    // The call's code asks for its documents: a read request to the main thread, answered as "rows".
    self.postMessage({ type: "read", id, k: JSON.parse(text).k });
  } else if (type === "rows") {
    answer(id, JSON.stringify({ status: "success", value: JSON.parse(text), logLines: [] }));
  }
};
`;

// ---------------------------------------------------------------------------------------------------------------

/** Worker → main thread: a call's answer, or a query's read request. */
type FromWorker = { type: "answer"; id: number; text: string } | { type: "read"; id: number; k: string };

/**
 * Serves the relay's calls: each goes to the worker as it arrives; a query's documents are read when the worker asks
 * for them (one round trip between the two threads, as a runner serves a worker's read), not before.
 */
export async function serveChild(dbPath: string, socketPath: string): Promise<void> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(dbPath, { readOnly: true });
  const selectItems = db.prepare("SELECT json FROM items WHERE k = ? ORDER BY id LIMIT 10");
  const workerUrl = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
  const worker = new Worker(workerUrl, { type: "module", deno: { permissions: "none" } });
  const conn = await Deno.connect({ transport: "unix", path: socketPath });
  const send = frameWriter(conn);
  worker.onmessage = ({ data }: MessageEvent<FromWorker>) => {
    if (data.type === "answer") return send({ id: data.id, text: data.text } satisfies FromChild);
    const rows = selectItems.all(data.k) as { json: string }[];
    worker.postMessage({ type: "rows", id: data.id, text: `[${rows.map((row) => row.json).join(",")}]` });
  };
  await readFrames(conn, (message) => {
    const { id, op, args } = message as ToChild;
    worker.postMessage({ type: op, id, text: JSON.stringify(args) });
  });
  Deno.exit(0);
}

if (import.meta.main) {
  // `deno task bench` runs every file here: alone, this helper has nothing to measure.
  if (Deno.args.length < 2) console.log("relay_child: a helper process of relay_floor.ts, nothing to measure alone");
  else await serveChild(Deno.args[0], Deno.args[1]);
}
