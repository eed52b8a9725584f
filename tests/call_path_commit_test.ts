/**
 * Issue 14: a SQLite commit's fsync runs off the event loop (src/persistence/_sqlite_wal_sync.ts), so the loop keeps
 * serving while a group is made durable; a commit is acknowledged only once its WAL is fsynced, a failed one writes
 * nothing, close waits for fsyncs in flight, a failed fsync stops every later write, and the WAL sync works under the
 * server's scoped permissions without keeping an idle process alive. Also: the idempotency record ID is computed
 * synchronously and stays what it was (records survive an upgrade).
 */
import { setImmediate } from "node:timers";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { freshSqlite as freshLocation } from "./helpers/databases.ts";
import { openSqlitePersistence, openSqliteReader } from "../src/persistence/sqlite.ts";
import type { CommitBatch } from "../src/persistence/types.ts";
import { legacyRecordId, resultKey } from "../src/functions/idempotency.ts";
import { SYSTEM_TABLE_NUMBERS } from "../src/database/mod.ts";
import { encodeDocumentId } from "../src/values/mod.ts";

/** A fresh SQLite database's path (in a temporary folder) and its cleanup. */
async function freshSqlite(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const location = await freshLocation();
  if (location.kind !== "sqlite") throw new Error("freshSqlite returned another backend");
  return { path: location.path, cleanup: location.cleanup };
}

/** A batch of `count` inserted documents, each with one index entry, at `ts`. */
function insertBatch(ts: bigint, count: number, prefix = "doc"): CommitBatch {
  const documents = [];
  const indexEntries = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}${ts}_${i}`;
    documents.push({
      id,
      tableNumber: 1,
      ts,
      json: JSON.stringify({ _id: id, n: i, pad: "x".repeat(200) }),
      prevTs: null,
    });
    indexEntries.push({ indexId: 1, key: new TextEncoder().encode(id), documentId: id, deleted: false });
  }
  return { ts, documents, indexEntries };
}

Deno.test("call path: the event loop keeps turning while a group commit is made durable", async () => {
  const location = await freshSqlite();
  const persistence = await openSqlitePersistence(location.path);
  try {
    await persistence.commit([insertBatch(1n, 10)]);
    let ticks = 0;
    let ticking = true;
    const tick = () => {
      ticks++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    // ~40,000 rows: a WAL of megabytes to fsync. A commit that fsynced inside COMMIT would resolve with no turn of
    // the loop at all (an awaited settled promise resumes before any setImmediate callback).
    const batches = Array.from({ length: 20 }, (_, i) => insertBatch(BigInt(10 + i), 1_000));
    await persistence.commit(batches);
    ticking = false;
    assert(ticks >= 1, `the loop turned ${ticks} times during the commit; expected it to stay free`);
    const reader = await openSqliteReader(location.path);
    try {
      const document = await reader.getDocument("doc29_999", 29n);
      assertEquals(document?.ts, 29n, "acknowledged means visible to another connection");
    } finally {
      await reader.close();
    }
    assertEquals(await persistence.maxTs(), 29n);
  } finally {
    await persistence.close();
    await location.cleanup();
  }
});

Deno.test("call path: a failed group commit writes nothing and the next one works", async () => {
  const location = await freshSqlite();
  const persistence = await openSqlitePersistence(location.path);
  try {
    await persistence.commit([insertBatch(5n, 3)]);
    const duplicate = insertBatch(7n, 2, "dup");
    duplicate.documents.push(duplicate.documents[0]);
    const error = await assertRejects(() => persistence.commit([insertBatch(6n, 2), duplicate]));
    assert(/UNIQUE/i.test(error.message), `the statement's own message comes back: ${error.message}`);
    assertEquals(await persistence.getDocument("doc6_0", 6n), null, "the first batch of the failed call rolled back");
    assertEquals(await persistence.maxTs(), 5n);
    await persistence.commit([insertBatch(6n, 1)]);
    assertEquals((await persistence.getDocument("doc6_0", 6n))?.ts, 6n);
  } finally {
    await persistence.close();
    await location.cleanup();
  }
});

Deno.test("call path: close lets fsyncs in flight finish, and later commits fail clearly", async () => {
  const location = await freshSqlite();
  const first = await openSqlitePersistence(location.path);
  const inFlight = [first.commit([insertBatch(1n, 500)]), first.commit([insertBatch(2n, 500)])];
  await first.close();
  await Promise.all(inFlight);
  const error = await assertRejects(() => first.commit([insertBatch(3n, 1)]));
  assert(error.message.includes("closed"), error.message);
  const second = await openSqlitePersistence(location.path);
  try {
    assertEquals(await second.maxTs(), 2n);
    assertEquals((await second.getDocument("doc2_499", 2n))?.ts, 2n);
  } finally {
    await second.close();
    await location.cleanup();
  }
});

Deno.test("call path: a failed WAL fsync fails its commit and refuses every later write", async () => {
  const location = await freshSqlite();
  // Inline checkpoints: a background checkpointer's connection, opening after the WAL is removed below, would create
  // a new one under the same name, and the sync would then find a file (seen once in CI).
  const persistence = await openSqlitePersistence(location.path, { checkpoints: "inline" });
  try {
    // SQLite keeps writing to the unlinked file; the WAL sync cannot open it by name, as if the disk had failed.
    await Deno.remove(`${location.path}-wal`);
    const error = await assertRejects(() => persistence.commit([insertBatch(1n, 1)]));
    assert(error.message.includes("write-ahead log durable"), error.message);
    const later = await assertRejects(() => persistence.setGlobals({ key: "value" }));
    assert(later.message.includes("until the server restarts"), later.message);
    await assertRejects(() => persistence.commit([insertBatch(2n, 1)]));
  } finally {
    await persistence.close();
    await location.cleanup();
  }
});

/** How long the child below may take; it needs well under a second unless something keeps it alive. */
const CHILD_TIMEOUT_MS = 30_000;

Deno.test("call path: the WAL sync works with data-directory access only, and never holds the process open", async () => {
  const location = await freshSqlite();
  const dataDir = location.path.slice(0, location.path.lastIndexOf("/"));
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  const sqliteModule = new URL("../src/persistence/sqlite.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { openSqlitePersistence } from ${JSON.stringify(sqliteModule)};
const p = await openSqlitePersistence(${JSON.stringify(location.path)});
await p.commit([{ ts: 7n, documents: [{ id: "a", tableNumber: 1, ts: 7n, json: "{}", prevTs: null }], indexEntries: [] }]);
await p.close();
// Left open on purpose: an idle writer must not keep the process alive.
const left = await openSqlitePersistence(${JSON.stringify(location.path)});
await left.commit([{ ts: 8n, documents: [{ id: "b", tableNumber: 1, ts: 8n, json: "{}", prevTs: null }], indexEntries: [] }]);
console.log("committed");`,
  );
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--cached-only", "--no-prompt", `--allow-read=${dataDir}`, `--allow-write=${dataDir}`, script],
      stdout: "piped",
      stderr: "piped",
      // A child the thread keeps alive is killed here, and the test fails on its exit code.
      signal: AbortSignal.timeout(CHILD_TIMEOUT_MS),
    }).output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 0, text);
    assert(text.includes("committed"), text);
    const reader = await openSqliteReader(location.path);
    try {
      assertEquals((await reader.getDocument("a", 7n))?.ts, 7n);
      assertEquals((await reader.getDocument("b", 8n))?.ts, 8n, "acknowledged before the process exited");
    } finally {
      await reader.close();
    }
  } finally {
    await Deno.remove(script);
    await location.cleanup();
  }
});

Deno.test("call path: idempotency result keys are unchanged by the synchronous hash", async () => {
  // Computed with WebCrypto's SHA-256 before the change: a result recorded then (under a document ID made of these
  // 16 bytes) must still be found.
  const expected = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(["owner", "s\0r"])));
  const key = resultKey("s\0r", "owner");
  assertEquals(key, resultKey("s\0r", "owner"));
  assert(!resultKey("s\0r", "another owner").every((byte, i) => byte === key[i]), "another owner's key differs");
  assertEquals(key, new Uint8Array(expected, 0, 16));
  const webCryptoId = encodeDocumentId(SYSTEM_TABLE_NUMBERS["_mutation_results"], new Uint8Array(expected, 0, 16));
  assertEquals(legacyRecordId(key), webCryptoId);
});
