/**
 * SQLite WAL checkpoints and the event loop (issue 14): how long each `commit()` holds the thread that calls it, with
 * SQLite's automatic checkpoint inside the commits ("inline", the baseline) and with checkpoints in a worker thread
 * ("background", the default: src/persistence/_sqlite_checkpointer.ts), measured in the same run, alternating rounds.
 * The writes are the shape of the call path's inserts: groups of `GROUP` transactions, each one document (~300 bytes)
 * and three index entries (by ID, by creation time, one user index), with up to two commits awaiting their fsync while
 * the next is written, as the database's commit queue does.
 *
 *   deno run -A scripts/bench/checkpoint_bench.ts      (env GROUPS, GROUP, ROUNDS)
 *
 * Prints per mode: groups/s, the time each commit call held the thread (p50, p99, p99.9, max), the calls that held it
 * over 2 ms and their total, and the background mode's ratios to the inline mode.
 */
import { type CommitBatch, openSqlitePersistence } from "../../src/persistence/mod.ts";

const GROUPS = Number(Deno.env.get("GROUPS") ?? 8_000);
const GROUP = Number(Deno.env.get("GROUP") ?? 4);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 2);
/** Commits awaiting their fsync while the next one is written. */
const IN_FLIGHT = 2;
const SLOW_MS = 2;

type Mode = "inline" | "background";

interface Figures {
  groupsPerSecond: number;
  holdMs: number[];
  slowCount: number;
  slowTotalMs: number;
  backgroundCheckpoints: { completed: number; quiet: number; quietTotalMs: number; quietMaxMs: number } | null;
  /** Gaps between the ticks of a 1 ms interval timer: how long the event loop was held. */
  tickGapsMs: number[];
  walBytes: number;
}

const encoder = new TextEncoder();

function group(firstTs: bigint, size: number): CommitBatch[] {
  return Array.from({ length: size }, (_, i) => {
    const ts = firstTs + BigInt(i);
    const id = crypto.randomUUID().replaceAll("-", "");
    const key = `k${Number(ts) % 1_000}`;
    const json = JSON.stringify({ _id: id, _creationTime: Date.now(), k: key, n: Number(ts), body: "x".repeat(200) });
    return {
      ts,
      documents: [{ id, tableNumber: 10_001, ts, json, prevTs: null }],
      indexEntries: [
        { indexId: 1, key: encoder.encode(id), documentId: id, deleted: false },
        { indexId: 2, key: encoder.encode(`${Date.now()}${id}`), documentId: id, deleted: false },
        { indexId: 3, key: encoder.encode(`${key}\u0000${id}`), documentId: id, deleted: false },
      ],
    };
  });
}

async function measure(mode: Mode): Promise<Figures> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-checkpoint-bench-" });
  try {
    const persistence = await openSqlitePersistence(`${dir}/denvex.sqlite3`, { checkpoints: mode });
    const holdMs: number[] = [];
    const inFlight: Promise<void>[] = [];
    let ts = (await persistence.maxTs()) + 1n;
    const tickGapsMs: number[] = [];
    let lastTickMs = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      tickGapsMs.push(now - lastTickMs);
      lastTickMs = now;
    }, 1);
    const started = performance.now();
    for (let i = 0; i < GROUPS; i++) {
      const batches = group(ts, GROUP);
      ts += BigInt(GROUP);
      const before = performance.now();
      inFlight.push(persistence.commit(batches));
      holdMs.push(performance.now() - before);
      if (inFlight.length > IN_FLIGHT) await inFlight.shift();
    }
    await Promise.all(inFlight);
    clearInterval(ticker);
    const seconds = (performance.now() - started) / 1000;
    const walBytes = (await Deno.stat(`${dir}/denvex.sqlite3-wal`)).size;
    const backgroundCheckpoints =
      (persistence as unknown as { backgroundCheckpoints: Figures["backgroundCheckpoints"] })
        .backgroundCheckpoints;
    await persistence.close();
    const slow = holdMs.filter((ms) => ms > SLOW_MS);
    return {
      groupsPerSecond: GROUPS / seconds,
      holdMs: holdMs.sort((a, b) => a - b),
      slowCount: slow.length,
      slowTotalMs: slow.reduce((sum, ms) => sum + ms, 0),
      backgroundCheckpoints,
      walBytes,
      tickGapsMs: tickGapsMs.sort((a, b) => a - b),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function quantile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

function line(mode: Mode, figures: Figures): string {
  const hold = (fraction: number) => quantile(figures.holdMs, fraction).toFixed(2);
  const tick = (fraction: number) => quantile(figures.tickGapsMs, fraction).toFixed(2);
  return `checkpoint_bench: ${mode.padEnd(10)} ${figures.groupsPerSecond.toFixed(0)} groups/s of ${GROUP}; ` +
    `commit holds the thread p50 ${hold(0.5)} ms, p99 ${hold(0.99)}, p99.9 ${hold(0.999)}, ` +
    `max ${figures.holdMs[figures.holdMs.length - 1].toFixed(2)}; ${figures.slowCount} over ${SLOW_MS} ms, ` +
    `${figures.slowTotalMs.toFixed(0)} ms in all; event loop ticks (1 ms timer) p99 ${tick(0.99)} ms, ` +
    `max ${figures.tickGapsMs[figures.tickGapsMs.length - 1].toFixed(2)}; WAL ${
      (figures.walBytes / 2 ** 20).toFixed(1)
    } MiB at the end` +
    (figures.backgroundCheckpoints === null
      ? ""
      : `; ${figures.backgroundCheckpoints.completed} background checkpoints, ` +
        `${figures.backgroundCheckpoints.quiet} of them quiet (writes waited for them ` +
        `${figures.backgroundCheckpoints.quietTotalMs.toFixed(0)} ms in all, ` +
        `${figures.backgroundCheckpoints.quietMaxMs.toFixed(1)} ms at most)`);
}

console.log(`checkpoint_bench: ${GROUPS} commit groups of ${GROUP} transactions per run, ${ROUNDS} round(s)`);
const ratios: { throughput: number; p99: number; slowTotal: number }[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const inline = await measure("inline");
  console.log(line("inline", inline));
  const background = await measure("background");
  console.log(line("background", background));
  ratios.push({
    throughput: background.groupsPerSecond / inline.groupsPerSecond,
    p99: quantile(background.holdMs, 0.99) / quantile(inline.holdMs, 0.99),
    slowTotal: background.slowTotalMs / Math.max(inline.slowTotalMs, 1e-9),
  });
}
for (const [round, ratio] of ratios.entries()) {
  console.log(
    `checkpoint_bench: round ${round + 1}, background/inline: groups/s ${ratio.throughput.toFixed(3)}×, ` +
      `p99 hold ${ratio.p99.toFixed(3)}×, time held in calls over ${SLOW_MS} ms ${ratio.slowTotal.toFixed(3)}×`,
  );
}
