/**
 * The worker's global snapshot (src/runtime/worker/global_snapshot.ts): its restore proves most calls changed nothing
 * without reading descriptors, so every way user code can change a built-in must still be found and undone.
 */
import { assertEquals } from "./helpers/assert.ts";

Deno.test("global snapshot: every kind of change to a built-in is found and undone", async () => {
  const worker = new Worker(new URL("./helpers/global_snapshot_worker.ts", import.meta.url), { type: "module" });
  try {
    const report = await new Promise<{
      results: Record<string, { restored: boolean; undone: boolean }>;
      keptOnGlobal: boolean;
      getterCalls: number;
      guardedName: string;
      guardedLength: number;
      restoredTwice: boolean;
      afterReorder: { restored: boolean; moved: boolean; laterFullRestores: number };
    }>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message));
      };
    });
    for (const [name, outcome] of Object.entries(report.results)) {
      assertEquals(outcome, { restored: true, undone: true }, name);
    }
    assertEquals(Object.keys(report.results).length, 20);
    // Symbol keys are looked for on prototypes only: one left on the global object stays, as documented.
    assertEquals(report.keptOnGlobal, true);
    // The restore never ran user code: the getters installed by user code were not called.
    assertEquals(report.getterCalls, 0);
    // The guards look like the built-ins they wrap.
    assertEquals([report.guardedName, report.guardedLength], ["defineProperty", 3]);
    assertEquals(report.restoredTwice, true);
    // A restore that moved a key in the enumeration order leaves later restores of unchanged globals cheap.
    assertEquals(report.afterReorder, { restored: true, moved: true, laterFullRestores: 0 });
  } finally {
    worker.terminate();
  }
});
