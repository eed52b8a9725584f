/**
 * The child process of relay_floor.ts (`relay_child.ts <db file> <socket>`): its own read-only connection to the
 * relay's database and one permission-less worker; it answers the relay's calls over a Unix socket. Kept apart from
 * relay_floor.ts so that it loads nothing but itself and the runners' framing (it runs with read and write access to the
 * database's folder only). Both ends frame messages as the server ⇄ runner bridge does (src/runtime/framing.ts).
 */
import { FrameWriter, pumpFrames } from "../../src/runtime/framing.ts";

/** Server → child: one call. Child → server: its answer (the response body, or the document to insert). */
export type ToChild = { id: number; op: "noop" | "query" | "insert"; args: Record<string, unknown> };
export type FromChild = { id: number; text: string };

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
  const writer = new FrameWriter(conn);
  const send = (message: FromChild) => void writer.send(message).catch(() => Deno.exit(0));
  worker.onmessage = ({ data }: MessageEvent<FromWorker>) => {
    if (data.type === "answer") return send({ id: data.id, text: data.text });
    const rows = selectItems.all(data.k) as { json: string }[];
    worker.postMessage({ type: "rows", id: data.id, text: `[${rows.map((row) => row.json).join(",")}]` });
  };
  await pumpFrames(conn, (message) => {
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
