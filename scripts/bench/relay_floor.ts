/**
 * The floor of the isolation design (issue 14): how fast can any server be that runs each call's code where denvex
 * runs it, in a permission-less worker inside a separate process, when it does nothing else?
 *
 * The relay is the bare handler of call_path_bench (same HTTP server, same node:sqlite database and group commit)
 * with one change: every call crosses to one of `CHILDREN` child processes over a Unix socket, and there to a worker
 * with no permissions, and back. The child runs the call's SQL on its own connection (as a runner reads at its
 * snapshot) and hands the rows to the worker as text; the worker parses them and writes the answer (a query), or
 * builds the document to insert (an insert, which the server then writes). Nothing of denvex is in it: no MVCC, no
 * Convex runtime, no argument validation, no restore of globals, no subscriptions, no logs. Each call goes to the
 * child with the fewest in flight, one JSON frame each way; like denvex's pool, a child holds at most the one it runs
 * and MAX_CALLS_BEHIND sent behind it, and the rest wait in the server.
 *
 * Prints, per workload, the bare handler's and the relay's calls/s and CPU per call, driven by the same closed-loop
 * HTTP clients as call_path_bench in the same run, and the relay's ratio to the bare handler: the most a design with
 * this isolation can reach against issue 14's ratio goals (≥ 0.4× for queries, ≥ 0.3× for inserts).
 *
 *   deno run -A scripts/bench/relay_floor.ts
 *     env DURATION_MS, CLIENTS, CHILDREN (2), IN_FLIGHT_PER_CHILD (1 + MAX_CALLS_BEHIND; 0: unbounded),
 *     ONLY=noop,query,insert
 */
import {
  type BareDatabase,
  drive,
  openBareDatabase,
  processKinds,
  type Run,
  runText,
  spawnHelperServer,
  WORKLOADS,
} from "./call_path_bench.ts";
import { descendantPids } from "../../tests/helpers/server_child.ts";
import type { FromChild, ToChild } from "./relay_child.ts";
import { FrameWriter, pumpFrames } from "../../src/runtime/framing.ts";
import { MAX_CALLS_BEHIND } from "../../src/runtime/runner_protocol.ts";
import { dirname, join } from "node:path";

const CLIENTS = Number(Deno.env.get("CLIENTS") ?? 32);
const CHILDREN = Number(Deno.env.get("CHILDREN") ?? 2);
/** Calls a child holds at once: by default denvex's (one running, MAX_CALLS_BEHIND behind it); 0: every call at once. */
const IN_FLIGHT_PER_CHILD = Number(Deno.env.get("IN_FLIGHT_PER_CHILD") ?? 1 + MAX_CALLS_BEHIND);
const ONLY = (Deno.env.get("ONLY") ?? "noop,query,insert").split(",");
const SCRIPT = new URL(import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------------------------
// The relay server (`relay_floor.ts --relay <db file>`): the bare handler, with every call crossing to a child.

async function serveRelay(dbPath: string): Promise<void> {
  const db: BareDatabase = await openBareDatabase(dbPath);
  const children = await Promise.all(Array.from({ length: CHILDREN }, (_, n) => startChild(dbPath, n)));
  const waiting = new Map<number, (text: string) => void>();
  // Calls in flight per child, and the calls waiting for a child with room (IN_FLIGHT_PER_CHILD, unbounded at 0).
  const inFlight = children.map(() => 0);
  const queue: ToChild[] = [];
  const sendTo = (n: number, call: ToChild) => {
    inFlight[n]++;
    children[n].send(call);
  };
  children.forEach((child, n) => {
    void pumpFrames(child.conn, (message) => {
      const { id, text } = message as FromChild;
      waiting.get(id)?.(text);
      waiting.delete(id);
      inFlight[n]--;
      const next = queue.shift();
      if (next !== undefined) sendTo(n, next);
    });
  });
  let nextId = 0;
  const relay = (op: ToChild["op"], args: Record<string, unknown>) =>
    new Promise<string>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      let least = 0;
      for (let n = 1; n < children.length; n++) if (inFlight[n] < inFlight[least]) least = n;
      const call: ToChild = { id, op, args };
      if (IN_FLIGHT_PER_CHILD === 0 || inFlight[least] < IN_FLIGHT_PER_CHILD) sendTo(least, call);
      else queue.push(call);
    });
  const json = { headers: { "Content-Type": "application/json" } };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const { path, args } = await request.json() as { path: string; args: Record<string, unknown> };
    if (path === "bench:noop") return new Response(await relay("noop", args), json);
    if (path === "bench:list") return new Response(await relay("query", args), json);
    if (path !== "bench:add") return Response.json({ status: "error", errorMessage: `no ${path} in the relay` });
    const document = await relay("insert", args);
    const value = await db.insertItem(args.k as string, document);
    return Response.json({ status: "success", value, logLines: [] });
  });
  console.log(`port ${server.addr.port}`);
}

async function startChild(dbPath: string, n: number): Promise<{ conn: Deno.Conn; send: (message: unknown) => void }> {
  const socketPath = join(dirname(dbPath), `child${n}.sock`);
  const listener = Deno.listen({ transport: "unix", path: socketPath });
  const dir = dirname(dbPath);
  new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-worker-options",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      `--allow-net=unix:${socketPath}`,
      new URL("./relay_child.ts", import.meta.url).pathname,
      dbPath,
      socketPath,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const conn = await listener.accept();
  listener.close();
  const writer = new FrameWriter(conn);
  return { conn, send: (message) => void writer.send(message).catch(() => {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// Driving both.

async function main(): Promise<void> {
  console.log(
    `relay_floor: ${navigator.hardwareConcurrency} cores, ${CLIENTS} clients, ${CHILDREN} child processes, ` +
      `${IN_FLIGHT_PER_CHILD || "unbounded"} calls in flight per child`,
  );
  const bare = await spawnHelperServer(new URL("./call_path_bench.ts", import.meta.url).pathname, ["--bare"]);
  const relay = await spawnHelperServer(SCRIPT, ["--relay"]);
  const bareKinds = () => processKinds(bare.pid, "bare");
  const relayKinds = async () => {
    const kinds = new Map<number, string>([[relay.pid, "relay server"]]);
    for (const pid of await descendantPids(relay.pid)) kinds.set(pid, "relay child");
    return kinds;
  };
  try {
    const names: Record<string, string> = { noop: "noop", query: "query", insert: "insert" };
    for (const workload of WORKLOADS.filter((w) => ONLY.includes(w.name) && w.name in names)) {
      const baseline: Run = await drive(bare.url, workload, CLIENTS, bareKinds);
      const run: Run = await drive(relay.url, workload, CLIENTS, relayKinds);
      console.log(`relay_floor: ${workload.name.padEnd(6)} bare  ${runText(baseline)}`);
      console.log(`relay_floor: ${workload.name.padEnd(6)} relay ${runText(run)}`);
      console.log(
        `relay_floor: ${workload.name.padEnd(6)} relay/bare ${(run.perSecond / baseline.perSecond).toFixed(2)}×`,
      );
    }
  } finally {
    await Promise.all([bare.close(), relay.close()]);
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--relay") await serveRelay(Deno.args[1]);
  else await main();
}
