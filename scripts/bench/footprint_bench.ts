/**
 * Footprint (issue 14): RSS and PSS of the server and its runners, per process kind, at five moments: idle (10,000
 * documents), after `QUERIES` distinct HTTP queries, while `SUBSCRIPTIONS` distinct subscriptions are live (raw sync
 * protocol, `SOCKETS` sockets held by a separate process so the client side is not measured), the same `SETTLE_MS`
 * later, and `SETTLE_MS` after those clients left. Each figure is also printed as a ratio to idle, measured in the
 * same run.
 *
 *   deno run -A scripts/bench/footprint_bench.ts   (env QUERIES, SUBSCRIPTIONS, SOCKETS, CONCURRENCY, SETTLE_MS)
 *
 * Env SERVER_DENO_FLAGS adds `deno run` flags to the server process (space-separated), e.g.
 * `SERVER_DENO_FLAGS=--v8-flags=--max-semi-space-size=4` to compare V8 settings against the default ones.
 */
import { createConvexApp, type ServerProcess, spawnServer } from "../../tests/helpers/convex_app.ts";
import { commandLineOf, descendantPids } from "../../tests/helpers/server_child.ts";
import { spawnSubscriber } from "./subscriber_process.ts";
import { callFunction, deployAndSeed, itemsApp } from "./items_app.ts";

const QUERIES = Number(Deno.env.get("QUERIES") ?? 10_000);
const SUBSCRIPTIONS = Number(Deno.env.get("SUBSCRIPTIONS") ?? 10_000);
const SOCKETS = Number(Deno.env.get("SOCKETS") ?? 100);
const CONCURRENCY = Number(Deno.env.get("CONCURRENCY") ?? 32);
/** Time given to the server to settle (idle runners exit, GC, freed sockets) before "after" is read. */
const SETTLE_MS = Number(Deno.env.get("SETTLE_MS") ?? 45_000);
const SERVER_DENO_FLAGS = (Deno.env.get("SERVER_DENO_FLAGS") ?? "").split(" ").filter((flag) => flag !== "");
const KEYS = 1_000;
const DOCUMENTS = 10_000;
/** Issue 14's goals on the PSS of the server and its runners. */
const GOAL_IDLE_PSS_MIB = 150;
const GOAL_LOADED_PSS_MIB = 300;

const APP = itemsApp(`"k" + (j % ${KEYS})`);

// ---------------------------------------------------------------------------------------------------------------
// Measuring.

/** The server and its runners, by kind (read again at each moment: runners come and go). */
async function processKinds(rootPid: number): Promise<Map<number, string>> {
  const kinds = new Map<number, string>([[rootPid, "server"]]);
  for (const pid of await descendantPids(rootPid)) {
    const command = await commandLineOf(pid);
    if (command.includes("node_runner") || command.includes("node-runner")) kinds.set(pid, "node runner");
    else if (/ runner( |$)/.test(command)) {
      kinds.set(pid, / --allow-net( |$)|--deny-net/.test(command) ? "action runner" : "transaction runner");
    } else kinds.set(pid, "other");
  }
  return kinds;
}

function memoryKib(pid: number): { rssKib: number; pssKib: number } {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    return { rssKib: kib("Rss"), pssKib: kib("Pss") };
  } catch {
    return { rssKib: 0, pssKib: 0 };
  }
}

interface Footprint {
  rssMib: number;
  pssMib: number;
  text: string;
}

async function footprint(rootPid: number): Promise<Footprint> {
  const byKind = new Map<string, { n: number; rssKib: number; pssKib: number }>();
  let rssKib = 0, pssKib = 0;
  for (const [pid, kind] of await processKinds(rootPid)) {
    const memory = memoryKib(pid);
    const sum = byKind.get(kind) ?? { n: 0, rssKib: 0, pssKib: 0 };
    byKind.set(kind, { n: sum.n + 1, rssKib: sum.rssKib + memory.rssKib, pssKib: sum.pssKib + memory.pssKib });
    rssKib += memory.rssKib;
    pssKib += memory.pssKib;
  }
  const mib = (kib: number) => (kib / 1024).toFixed(0);
  const parts = [...byKind].map(([kind, sum]) =>
    `${kind}${sum.n > 1 ? ` ×${sum.n}` : ""} ${mib(sum.rssKib)}/${mib(sum.pssKib)}`
  );
  return { rssMib: rssKib / 1024, pssMib: pssKib / 1024, text: `(RSS/PSS MiB: ${parts.join(", ")})` };
}

function line(label: string, now: Footprint, idle: Footprint, goalMib: number | null): string {
  const goal = goalMib === null ? "" : `; goal PSS < ${goalMib} MiB: ${now.pssMib < goalMib ? "met" : "MISSED"}`;
  return `footprint_bench: ${label.padEnd(28)} RSS ${now.rssMib.toFixed(0)} MiB, PSS ${now.pssMib.toFixed(0)} MiB ` +
    `= ${(now.pssMib / idle.pssMib).toFixed(2)}× idle ${now.text}${goal}`;
}

async function distinctQueries(url: string): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < QUERIES) {
      const i = next++;
      await callFunction(url, "query", "bench:list", { k: `k${(i * 7919) % KEYS}`, nonce: i });
    }
  }));
  return QUERIES / ((performance.now() - started) / 1000);
}

/**
 * Where the server's RSS lives, from /proc/<pid>/smaps: glibc's main heap (`[heap]`, native allocations of the
 * runtime: sockets, buffers, SQLite), anonymous mappings (V8's heap pages, thread stacks, glibc's thread arenas) and
 * the executable's own pages.
 */
function serverMappings(pid: number): string {
  const kib = new Map<string, number>();
  let text = "";
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/smaps`);
  } catch {
    return "";
  }
  let kind = "";
  for (const row of text.split("\n")) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(row);
    if (mapping) kind = mapping[1] === "" ? "anon" : mapping[1].startsWith("/") ? "files" : mapping[1];
    const rss = /^Rss:\s+(\d+) kB/.exec(row);
    if (rss) kib.set(kind, (kib.get(kind) ?? 0) + Number(rss[1]));
  }
  const mib = (k: string) => ((kib.get(k) ?? 0) / 1024).toFixed(0);
  return `[server RSS: [heap] ${mib("[heap]")}, anon ${mib("anon")}, files ${mib("files")} MiB]`;
}

/** The server's own view of its memory (`/metrics`): where its RSS goes (V8 heap used and reserved, external). */
async function serverHeap(server: ServerProcess): Promise<string> {
  const response = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${server.adminKey}` } });
  const text = await response.text();
  const mib = (kind: string) =>
    (Number(new RegExp(`^denvex_process_memory_bytes\\{kind="${kind}"\\} (\\S+)$`, "m").exec(text)?.[1] ?? NaN) /
      (1024 * 1024)).toFixed(0);
  return `[server heap used/total ${mib("heap_used")}/${mib("heap_total")} MiB, external ${mib("external")} MiB] ` +
    serverMappings(server.pid);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const app = await createConvexApp(APP);
  const server = await spawnServer({ denoFlags: SERVER_DENO_FLAGS });
  if (SERVER_DENO_FLAGS.length > 0) console.log(`footprint_bench: server flags ${SERVER_DENO_FLAGS.join(" ")}`);
  try {
    await deployAndSeed(app, server, DOCUMENTS);
    await sleep(SETTLE_MS);
    const idle = await footprint(server.pid);
    console.log(line(`idle (${DOCUMENTS} documents)`, idle, idle, GOAL_IDLE_PSS_MIB) + ` ${await serverHeap(server)}`);
    const perSecond = await distinctQueries(server.url);
    const afterQueries = await footprint(server.pid);
    console.log(
      line(`after ${QUERIES} queries`, afterQueries, idle, GOAL_LOADED_PSS_MIB) +
        ` [${perSecond.toFixed(0)}/s] ${await serverHeap(server)}`,
    );
    const subscriber = await spawnSubscriber(server.url, {
      udfPath: "bench:list",
      count: SUBSCRIPTIONS,
      sockets: SOCKETS,
      keyPrefix: "k",
      keyModulo: KEYS,
      nonceBase: 1_000_000,
    });
    const live = await footprint(server.pid);
    console.log(
      line(`${SUBSCRIPTIONS} live subscriptions`, live, idle, GOAL_LOADED_PSS_MIB) +
        (subscriber.failed > 0 ? ` [${subscriber.failed} FAILED]` : "") + ` ${await serverHeap(server)}`,
    );
    // The same subscriptions once the burst of adding them is over (idle GC has run): the steady state.
    await sleep(SETTLE_MS);
    const liveSettled = await footprint(server.pid);
    console.log(
      line(`  still live ${SETTLE_MS} ms later`, liveSettled, idle, GOAL_LOADED_PSS_MIB) +
        ` ${await serverHeap(server)}`,
    );
    await subscriber.leave();
    await sleep(SETTLE_MS);
    const after = await footprint(server.pid);
    console.log(line(`${SETTLE_MS} ms after they left`, after, idle, null) + ` ${await serverHeap(server)}`);
    const returned = live.pssMib - idle.pssMib <= 0 ? 1 : (live.pssMib - after.pssMib) / (live.pssMib - idle.pssMib);
    console.log(
      `footprint_bench: memory returned after the clients left: ${(returned * 100).toFixed(0)} % of the growth`,
    );
  } finally {
    await server.close().catch(() => {});
    await app.dispose();
  }
}

await main();
