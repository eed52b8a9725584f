/**
 * Staged imports (src/snapshot/import_staged.ts) on a real SQLite database, with the staging threshold lowered so
 * small files take the staged path: documents arrive in chunks yet become visible all at once; an existing empty
 * table keeps its number and its schema indexes; a failure in a later chunk leaves nothing behind; staging tables a
 * crash left are removed by the next import; a transaction that read the empty table before the switch conflicts;
 * stored files of a snapshot ZIP are staged and switched in with the tables;
 * and an import the staged path cannot take (a non-empty table) falls back to the one-commit path.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { freshSqlite } from "./helpers/databases.ts";
import { type Database, openDatabase, SyscallError, SYSTEM_TABLE_NUMBERS } from "../src/database/mod.ts";
import { openPersistence } from "../src/persistence/mod.ts";
import { StorageService } from "../src/storage/mod.ts";
import { SnapshotImports, ZipWriter } from "../src/snapshot/mod.ts";
import { encodeBase64, generateDocumentId, isDocumentIdOfTable } from "../src/values/mod.ts";

const STAGED_ABOVE = 10;

async function withImports(
  body: (db: Database, imports: SnapshotImports, dir: string, storage: StorageService) => Promise<void>,
) {
  const location = await freshSqlite();
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-staged-test-" });
  const db = await openDatabase(await openPersistence(location));
  try {
    const storage = await StorageService.open({ database: db, dataDir, adminKey: "t|k", cloudUrl: () => "" });
    const imports = new SnapshotImports({ database: db, storage, dataDir, stagedAboveDocuments: STAGED_ABOVE });
    await body(db, imports, dataDir, storage);
  } finally {
    await db.close();
    await location.cleanup();
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function jsonl(dir: string, name: string, rows: unknown[]): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
  return path;
}

async function all(db: Database, index: string): Promise<Record<string, unknown>[]> {
  const rows = await db.readSnapshot().scan(index, { limit: 100_000 });
  return rows.map((row) => JSON.parse(row.json));
}

function stagingTables(db: Database): string[] {
  return db.catalog.tables.filter((table) => table.name.startsWith("_staged_import_")).map((table) => table.name);
}

const request = (tableName: string) => ({ tableName, mode: "requireEmpty" as const, format: "jsonLines" as const });

Deno.test("staged import: a new table appears whole, in chunks larger than one commit", async () => {
  await withImports(async (db, imports, dir) => {
    const count = 12_000;
    const file = await jsonl(dir, "big.jsonl", Array.from({ length: count }, (_, i) => ({ i })));
    const before = db.latestTs;
    let commitsDuringImport = 0;
    const stop = db.onCommit(() => commitsDuringImport++);
    assertEquals(await imports.importFile(file, request("big")), count);
    stop();
    assert(commitsDuringImport > 2, `expected chunked commits, saw ${commitsDuringImport}`);
    assert(db.latestTs > before);
    const rows = await all(db, "big.by_creation_time");
    assertEquals(rows.map((row) => row.i), Array.from({ length: count }, (_, i) => i));
    const table = db.catalogView.tableByName("big")!;
    assert(rows.every((row) => isDocumentIdOfTable(row._id as string, table.tableNumber)));
    assertEquals(stagingTables(db), []);
    // IDs resolve through the table's number.
    assertEquals((await db.readSnapshot().get(rows[5]._id as string))?.id, rows[5]._id);
  });
});

Deno.test("staged import: an existing empty table keeps its number and its schema index", async () => {
  await withImports(async (db, imports, dir) => {
    await db.createTable("people");
    const indexId = db.nextIndexId();
    await db.updateCatalog((catalog) => ({
      ...catalog,
      tables: catalog.tables.map((table) =>
        table.name === "people"
          ? { ...table, indexes: [...table.indexes, { indexId, name: "people.by_age", fields: ["age"], ready: true }] }
          : table
      ),
    }));
    const number = db.catalogView.tableByName("people")!.tableNumber;
    const file = await jsonl(dir, "people.jsonl", Array.from({ length: 50 }, (_, i) => ({ age: 49 - i })));
    await imports.importFile(file, request("people"));
    const table = db.catalogView.tableByName("people")!;
    assertEquals(table.tableNumber, number);
    assert(table.indexes.some((index) => index.name === "people.by_age"));
    const byAge = await all(db, "people.by_age");
    assertEquals(byAge.map((row) => row.age), Array.from({ length: 50 }, (_, i) => i));
  });
});

Deno.test("staged import: a duplicate ID in a later chunk fails the import and leaves nothing", async () => {
  await withImports(async (db, imports, dir) => {
    await db.createTable("fresh");
    const id = generateDocumentId(db.catalogView.tableByName("fresh")!.tableNumber);
    // Rows 10 and 6,500 share an ID: the second lands in the second chunk, after the first was committed.
    const rows = Array.from({ length: 7_000 }, (_, i) => i === 10 || i === 6_500 ? { i, _id: id } : { i });
    const file = await jsonl(dir, "dup.jsonl", rows);
    let commits = 0;
    const stop = db.onCommit(() => commits++);
    const error = await imports.importFile(file, request("fresh")).then(() => null, (e: Error) => e);
    stop();
    assert(error !== null, "the import should fail");
    assertStringIncludes(error.message, `the document ${id} appears twice`);
    assert(commits >= 2, `the first chunk should have been staged (saw ${commits} commits)`);
    assertEquals(await all(db, "fresh.by_id"), []);
    assertEquals(await db.readSnapshot().get(id), null);
    assertEquals(stagingTables(db), []);
  });
});

Deno.test("staged import: leftovers of a crashed import go; readers of the empty table conflict", async () => {
  await withImports(async (db, imports, dir) => {
    await db.createTable("_staged_import_abcdef_ghost");
    await db.runSystemTransaction(async (tx) => {
      for (let i = 0; i < 3; i++) await tx.insert("_staged_import_abcdef_ghost", { i });
    });
    await db.createTable("target");
    const reader = db.beginSystemTransaction();
    assertEquals(await reader.scan("target.by_id", { limit: 10 }), []);
    await reader.insert("target", { decided: "the table was empty" });
    const file = await jsonl(dir, "t.jsonl", Array.from({ length: 30 }, (_, i) => ({ i })));
    await imports.importFile(file, request("target"));
    assertEquals(stagingTables(db), []);
    const conflict = await db.commit(reader.outcome()).then(() => null, (e: unknown) => e);
    assert(
      conflict instanceof SyscallError && conflict.code === "OptimisticConcurrencyControlFailure",
      `a transaction that read the empty table should conflict, got ${conflict}`,
    );
    assertEquals((await all(db, "target.by_id")).length, 30);
  });
});

Deno.test("staged import: a non-empty table takes the one-commit path (append)", async () => {
  await withImports(async (db, imports, dir) => {
    await db.runSystemTransaction(async (tx) => {
      await tx.insert("kept", { old: true });
    });
    const file = await jsonl(dir, "more.jsonl", Array.from({ length: 40 }, (_, i) => ({ i })));
    await imports.importFile(file, { ...request("kept"), mode: "append" });
    assertEquals((await all(db, "kept.by_id")).length, 41);
    assertEquals(stagingTables(db), []);
  });
});

Deno.test("staged import: a snapshot ZIP with stored files switches its _storage documents in too", async () => {
  await withImports(async (db, imports, dir, storage) => {
    const files = [new TextEncoder().encode("first file"), new Uint8Array(70_000).map((_, i) => i & 0xff)];
    const storageNumber = SYSTEM_TABLE_NUMBERS._storage;
    const fileIds = files.map(() => generateDocumentId(storageNumber));
    const metadata = await Promise.all(files.map(async (bytes, i) => ({
      _id: fileIds[i],
      _creationTime: 1_700_000_000_000 + i,
      sha256: encodeBase64(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))),
      size: bytes.length,
      contentType: "application/octet-stream",
    })));
    const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify({ i, file: fileIds[i % 2] })).join("\n");
    const zip = new ZipWriter();
    const chunks: Uint8Array[] = [];
    const text = (value: string) => [new TextEncoder().encode(value)];
    for (
      const part of [
        zip.entry("docs/documents.jsonl", text(rows + "\n")),
        zip.entry("_storage/documents.jsonl", text(metadata.map((m) => JSON.stringify(m)).join("\n") + "\n")),
        zip.entry(`_storage/${fileIds[0]}`, [files[0]]),
        zip.entry(`_storage/${fileIds[1]}`, [files[1]]),
      ]
    ) for await (const chunk of part) chunks.push(chunk);
    for (const chunk of zip.finish()) chunks.push(chunk);
    const path = `${dir}/files.zip`;
    await Deno.writeFile(path, new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer()));

    let stagedCommits = 0;
    const stop = db.onCommit(() => stagedCommits++);
    assertEquals(await imports.importFile(path, { tableName: null, mode: "requireEmpty", format: "zip" }), 42);
    stop();
    assert(stagedCommits >= 3, `expected staged commits, saw ${stagedCommits}`);
    assertEquals(stagingTables(db), []);
    assertEquals(db.catalogView.tableByName("_storage")?.tableNumber, storageNumber);
    const stored = await all(db, "_storage.by_id");
    assertEquals(stored.map((row) => row._id).sort(), [...fileIds].sort());
    for (const [i, id] of fileIds.entries()) {
      assertEquals(await storage.blobs.read(id), files[i]);
      assert((await db.readSnapshot().get(id)) !== null);
    }
    assertEquals((await all(db, "docs.by_id")).length, 40);
  });
});
