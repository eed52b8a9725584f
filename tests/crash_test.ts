/**
 * Crash safety: kill -9 a process in the middle of a write load, reopen the same data, and check that every
 * acknowledged commit is there and that new timestamps are larger than any issued before the crash.
 */
import { assert } from "./helpers/assert.ts";
import { BACKENDS } from "./helpers/databases.ts";
import { collect, mutate, query, sys } from "./helpers/engine.ts";
import { openDatabase } from "../src/database/mod.ts";
import { openPersistence } from "../src/persistence/mod.ts";

const ACKS_BEFORE_KILL = 300;

for (const backend of BACKENDS) {
  Deno.test({
    name: `crash[${backend.name}]: kill -9 during a write load loses no acknowledged commit`,
    async fn() {
      const location = await backend.fresh();
      try {
        const { cleanup: _cleanup, ...plain } = location;
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            new URL("./helpers/write_load.ts", import.meta.url).pathname,
            JSON.stringify(plain),
          ],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        const acknowledged = new Map<string, bigint>();
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        let killed = false;
        while (!killed) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          const lines = buffer.split("\n");
          buffer = lines.pop()!;
          for (const line of lines) {
            if (line === "ready" || line === "") continue;
            const [id, ts] = line.split(" ");
            acknowledged.set(id, BigInt(ts));
          }
          if (acknowledged.size >= ACKS_BEFORE_KILL) {
            child.kill("SIGKILL");
            killed = true;
          }
        }
        // Lines already in the pipe when the kill landed were acknowledged too.
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
        }
        for (const line of buffer.split("\n")) {
          const [id, ts] = line.split(" ");
          if (id && ts && id !== "ready") acknowledged.set(id, BigInt(ts));
        }
        const status = await child.status;
        assert(status.signal === "SIGKILL", `the writer was killed (status ${JSON.stringify(status)})`);
        const maxAckTs = [...acknowledged.values()].reduce((a, b) => (a > b ? a : b), 0n);

        const db = await openDatabase(await openPersistence(plain));
        try {
          const documents = await query(
            db,
            (tx) => collect(tx, { source: { type: "FullTableScan", tableName: "load", order: null }, operators: [] }),
          );
          const present = new Set(documents.map((d) => d._id as string));
          const missing = [...acknowledged.keys()].filter((id) => !present.has(id));
          assert(missing.length === 0, `${missing.length} acknowledged commits are missing after the crash`);
          assert(documents.length >= acknowledged.size, "at least every acknowledged document is there");
          const { ts } = await mutate(db, (tx) => sys(tx, "1.0/insert", { table: "load", value: { after: true } }));
          assert(
            ts > maxAckTs,
            `a new commit ts (${ts}) is above every ts acknowledged before the crash (${maxAckTs})`,
          );
          assert(db.latestTs >= maxAckTs, "the recovered snapshot is not behind the acknowledged commits");
        } finally {
          await db.close();
        }
      } finally {
        await location.cleanup();
      }
    },
  });
}
