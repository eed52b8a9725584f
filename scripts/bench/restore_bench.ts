/**
 * The worker's global restore alone (src/runtime/worker/global_snapshot.ts, issue 14): µs per `restoreGlobalSnapshot`
 * of an unchanged snapshot, the cost every call of a runner pays, in a fresh worker of its own (the shape guards change
 * its realm for good). Also the same after a call-like change that puts a global back in another place of V8's
 * enumeration order, which must not make every later restore a full one.
 *
 *   deno run -A scripts/bench/restore_bench.ts      (env RESTORES, ROUNDS)
 *
 * With env BASELINE_TREE=<dir> (a copy of an older checkout), that tree's restore is measured too, in alternating
 * rounds: before and after in one run.
 */

const RESTORES = Number(Deno.env.get("RESTORES") ?? 20_000);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);

/** The worker's source: imports the snapshot module at `moduleUrl`, then times restores. */
function workerSource(moduleUrl: string): string {
  return `
    import { types } from "node:util";
    const snapshot = await import(${JSON.stringify(moduleUrl)});
    snapshot.installShapeGuards(types.isProxy);
    snapshot.takeGlobalSnapshot();
    const time = () => {
      for (let i = 0; i < ${RESTORES} / 10; i++) snapshot.restoreGlobalSnapshot();
      const started = performance.now();
      for (let i = 0; i < ${RESTORES}; i++) snapshot.restoreGlobalSnapshot();
      return (performance.now() - started) * 1000 / ${RESTORES};
    };
    const unchanged = time();
    const microtask = Object.getOwnPropertyDescriptor(globalThis, "queueMicrotask");
    delete globalThis.queueMicrotask;
    Object.defineProperty(globalThis, "queueMicrotask", { ...microtask, enumerable: false });
    snapshot.restoreGlobalSnapshot();
    const afterReorder = time();
    self.postMessage({ unchanged, afterReorder });
  `;
}

async function measure(moduleUrl: string): Promise<{ unchanged: number; afterReorder: number }> {
  const url = URL.createObjectURL(new Blob([workerSource(moduleUrl)], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message));
      };
    });
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
}

const trees: [string, string][] = [];
const baseline = Deno.env.get("BASELINE_TREE");
if (baseline !== undefined) trees.push(["before", `file://${baseline}/src/runtime/worker/global_snapshot.ts`]);
trees.push([
  baseline === undefined ? "restore" : "after",
  new URL("../../src/runtime/worker/global_snapshot.ts", import.meta.url).href,
]);
console.log(`restore_bench: µs per restore of an unchanged snapshot, ${RESTORES} restores, ${ROUNDS} rounds`);
for (let round = 1; round <= ROUNDS; round++) {
  for (const [label, moduleUrl] of trees) {
    const { unchanged, afterReorder } = await measure(moduleUrl);
    console.log(
      `restore_bench: ${label.padEnd(7)} ${unchanged.toFixed(1)} µs; after a global came back reordered ` +
        `${afterReorder.toFixed(1)} µs = ${(afterReorder / unchanged).toFixed(2)}×`,
    );
  }
}
