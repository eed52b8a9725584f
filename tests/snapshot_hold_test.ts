/**
 * Snapshot holds (issue 16: exports and backups of any size). With a retention window of a few hundred milliseconds:
 * on SQLite, PostgreSQL and MySQL a held snapshot keeps reading what it saw while writes and retention passes run,
 * bad holds are refused and change nothing, the hold limit and the hard age limit apply, and after release retention
 * prunes the old revisions again. End to end, `npx convex export` downloading through a throttled proxy (a slow
 * client) for many retention windows while transfers commit still gets a complete, consistent ZIP; a client that goes
 * away mid-download releases its hold.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, seededRandom, waitFor } from "./helpers/assert.ts";
import { BACKENDS } from "./helpers/databases.ts";
import { createConvexApp, runConvexCli } from "./helpers/convex_app.ts";
import {
  type Database,
  MAX_SNAPSHOT_HOLD_MS,
  MAX_SNAPSHOT_HOLDS,
  openDatabase,
  type SnapshotHold,
} from "../src/database/mod.ts";
import { openPersistence, type PersistenceLocation } from "../src/persistence/mod.ts";
import { openBackend } from "../src/server/backend.ts";
import { createApiApp } from "../src/http/mod.ts";
import { SyncHub } from "../src/sync/mod.ts";
import { MAX_BACKUP_INTERVAL_MS, readZipDirectory, readZipEntry, textLines } from "../src/snapshot/mod.ts";

/** The shortened retention: revisions superseded more than this long ago may be pruned, checked this often. */
const RETENTION = { retentionMs: 200, retentionIntervalMs: 25 };
const WINDOW_NS = BigInt(RETENTION.retentionMs) * 1_000_000n;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
  return "no error";
}

/** One field of a stored document (null when there is none). */
function fieldOf(document: { json: string } | null, field: string): unknown {
  return document === null ? null : (JSON.parse(document.json) as Record<string, unknown>)[field];
}

/** The revision of `id` a read at `ts` finds in persistence itself, below the database's retention check. */
async function rawRevisionAt(db: Database, table: string, ts: bigint): Promise<number> {
  const byId = db.catalogView.forComponent("").tableByName(table)!.indexes[0];
  const rows = await db.persistence.scanIndex({
    indexId: byId.indexId,
    lowKey: new Uint8Array(),
    highKey: null,
    order: "asc",
    snapshotTs: ts,
    limit: 10,
  });
  return rows.length;
}

for (const backend of BACKENDS) {
  Deno.test({
    name: `snapshot holds (${backend.name}): retention stops at the oldest hold, and resumes after release`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const fresh = await backend.fresh();
      const db = await openDatabase(await openPersistence(fresh as PersistenceLocation), RETENTION);
      try {
        const { value: id } = await db.runSystemTransaction((tx) => tx.insert("things", { v: 0 }));
        const heldTs = db.latestTs;
        const hold = db.holdSnapshot(heldTs, { reason: "test export" });
        assertEquals(db.snapshotHolds.count, 1);

        // Writes continue for many retention windows; retention runs every 25 ms but stops at the hold.
        const writeUntil = Date.now() + 5 * RETENTION.retentionMs;
        for (let v = 1; Date.now() < writeUntil; v++) {
          await db.runSystemTransaction((tx) => tx.patch(id, { v }));
          await sleep(5);
        }
        assert(db.latestTs - WINDOW_NS > heldTs, "without the hold, retention would have passed it");
        await waitFor("retention to reach the hold", () => Promise.resolve(db.retainedSinceTs === heldTs), Boolean);
        assertEquals(fieldOf(await db.readSnapshot(heldTs).get(id), "v"), 0, "the held snapshot reads what it saw");
        // A direct prune call stops at the hold too.
        await db.pruneNow(db.latestTs);
        assertEquals(db.retainedSinceTs, heldTs);
        assertEquals(await rawRevisionAt(db, "things", heldTs), 1);

        // Bad holds are refused with a clear error and change nothing.
        assertEquals(codeOf(() => db.holdSnapshot(db.latestTs + 1n, { reason: "x" })), "BadTimestamp");
        assertEquals(codeOf(() => db.holdSnapshot(heldTs - 1n, { reason: "x" })), "SnapshotTooOld");
        assertEquals(codeOf(() => db.holdSnapshot(heldTs, { reason: "" })), "BadSnapshotHold");
        assertEquals(codeOf(() => db.holdSnapshot(heldTs, { reason: "x", maxHoldMs: 0 })), "BadSnapshotHold");
        assertEquals(
          codeOf(() => db.holdSnapshot(heldTs, { reason: "x", maxHoldMs: MAX_SNAPSHOT_HOLD_MS + 1 })),
          "BadSnapshotHold",
        );
        assertEquals(db.snapshotHolds.count, 1, "refused holds add nothing");

        // The count limit: a flood of stalled readers is refused, not accumulated.
        const more: SnapshotHold[] = [];
        while (db.snapshotHolds.count < MAX_SNAPSHOT_HOLDS) {
          more.push(db.holdSnapshot(db.latestTs, { reason: "flood" }));
        }
        assertEquals(codeOf(() => db.holdSnapshot(db.latestTs, { reason: "one too many" })), "TooManySnapshotHolds");
        for (const extra of more) extra.release();

        // A hold past its maximum age lapses on its own and retention moves past it.
        const lapsing = db.holdSnapshot(db.latestTs, { reason: "stuck reader", maxHoldMs: 50 });
        assertEquals(db.snapshotHolds.count, 2);

        hold.release();
        hold.release(); // idempotent
        assert(hold.ended);
        await db.runSystemTransaction((tx) => tx.patch(id, { v: -1 }));
        await sleep(RETENTION.retentionMs);
        await db.runSystemTransaction((tx) => tx.patch(id, { v: -2 }));
        await waitFor("retention to resume", () => Promise.resolve(db.retainedSinceTs > lapsing.ts), Boolean);
        assert(lapsing.ended, "the stuck hold lapsed");
        assertEquals(db.snapshotHolds.count, 0);
        assertEquals(codeOf(() => db.readSnapshot(heldTs)), "SnapshotTooOld");
        // The old revisions are gone from persistence, not only hidden.
        while (!(await db.pruneNow(db.retainedSinceTs)).done) { /* finish the pass */ }
        assertEquals(await rawRevisionAt(db, "things", heldTs), 0, "the held revision was pruned after release");
      } finally {
        await db.close();
        await fresh.cleanup();
      }
    },
  });
}

// ---- end to end: a slow `npx convex export` ------------------------------------------------------------------------

const FILLER_DOCUMENTS = 12_000;
const FILLER_BYTES = 1_500;
const ACCOUNTS = 10;
const START_BALANCE = 100;

/** A deployment served in this process on a database with the shortened retention. */
async function startShortRetentionDeployment(options: { backups?: boolean } = {}) {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-hold-" });
  const adminKey = `denvex-test|${crypto.randomUUID().replaceAll("-", "")}`;
  const location = { kind: "sqlite" as const, path: join(dataDir, "denvex.sqlite3") };
  const database = await openDatabase(await openPersistence(location), RETENTION);
  const urls = { cloudUrl: "", siteUrl: "" };
  // Backups only when the test asks for one (`backupNow`): the interval is the longest allowed.
  const backup = options.backups ? { everyMs: MAX_BACKUP_INTERVAL_MS, dir: null, keep: 2 } : null;
  const backend = await openBackend({
    database,
    location,
    dataDir,
    adminKey,
    instanceName: "denvex-test",
    urls,
    backup,
  });
  const sync = new SyncHub(backend);
  const app = createApiApp({ version: "denvex test", instanceName: "denvex-test", adminKey, backend, sync });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  urls.cloudUrl = url;
  return {
    url,
    adminKey,
    database,
    backend,
    sqlitePath: location.path,
    async close() {
      await sync.close();
      await server.shutdown();
      await backend.close();
      await database.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** A proxy that passes everything through, but sends export ZIPs at about `bytesPerSecond` (a slow client). */
function throttlingProxy(target: string, bytesPerSecond: number) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    if (request.headers.get("upgrade") === "websocket") return proxyWebSocket(request, `${target}${url.pathname}`);
    const upstream = await fetch(`${target}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    if (!url.pathname.startsWith("/api/export/zip/") || upstream.body === null) return upstream;
    const slow = upstream.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        async transform(chunk, controller) {
          await sleep((chunk.length / bytesPerSecond) * 1000);
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(slow, { status: upstream.status, headers: upstream.headers });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/** Passes a WebSocket (the CLI's sync subscription) through to `target`, message for message. */
function proxyWebSocket(request: Request, target: string): Response {
  const { socket, response } = Deno.upgradeWebSocket(request);
  const upstream = new WebSocket(target.replace(/^http/, "ws"));
  const pending: (string | ArrayBufferLike | Blob | ArrayBufferView)[] = [];
  upstream.onopen = () => pending.splice(0).forEach((message) => upstream.send(message));
  socket.onmessage = (event) =>
    upstream.readyState === WebSocket.OPEN ? upstream.send(event.data) : pending.push(event.data);
  upstream.onmessage = (event) => socket.readyState === WebSocket.OPEN && socket.send(event.data);
  socket.onclose = () => upstream.close();
  upstream.onclose = () => socket.readyState === WebSocket.OPEN && socket.close();
  socket.onerror = upstream.onerror = () => {};
  return response;
}

/** Random text that does not compress, so the ZIP is as large as the data. */
function incompressible(bytes: number): string {
  const raw = crypto.getRandomValues(new Uint8Array(Math.ceil(bytes * 3 / 4)));
  return btoa(String.fromCharCode(...raw)).slice(0, bytes);
}

function revisionRows(sqlitePath: string): number {
  const db = new DatabaseSync(sqlitePath, { readOnly: true });
  try {
    return Number((db.prepare("SELECT count(*) AS n FROM documents").get() as { n: number | bigint }).n);
  } finally {
    db.close();
  }
}

async function zipLines(zipPath: string, path: string): Promise<Record<string, unknown>[]> {
  const entry = (await readZipDirectory(zipPath)).find((e) => e.path === path);
  assert(entry, `${path} is in the ZIP`);
  const lines: Record<string, unknown>[] = [];
  for await (const line of textLines(readZipEntry(zipPath, entry))) lines.push(JSON.parse(line));
  return lines;
}

/** Fills a `filler` table (first in the ZIP, so the accounts are read after the slow part) and 10 accounts. */
async function seedBank(database: Database, fillerDocuments: number): Promise<string[]> {
  for (let done = 0; done < fillerDocuments; done += 500) {
    await database.runSystemTransaction(async (tx) => {
      for (let i = 0; i < 500; i++) await tx.insert("filler", { n: done + i, text: incompressible(FILLER_BYTES) });
    });
  }
  const { value: accounts } = await database.runSystemTransaction(async (tx) => {
    const ids: string[] = [];
    for (let i = 0; i < ACCOUNTS; i++) ids.push(await tx.insert("accounts", { owner: i, balance: START_BALANCE }));
    return ids;
  });
  return accounts;
}

/** A write load running until stopped; `stop` resolves with the number of transfers committed. */
interface Transfers {
  stop(): Promise<number>;
}

/** Transfers between random accounts (each rewrites two), keeping the balance total, until stopped. */
function startTransfers(database: Database, accounts: string[], afterEach: (count: number) => void): Transfers {
  const random = seededRandom(16);
  let stopped = false;
  let count = 0;
  const loop = (async () => {
    while (!stopped) {
      const fromIndex = Math.floor(random() * ACCOUNTS);
      const from = accounts[fromIndex];
      const to = accounts[(fromIndex + 1 + Math.floor(random() * (ACCOUNTS - 1))) % ACCOUNTS];
      const amount = 1 + Math.floor(random() * 5);
      await database.runSystemTransaction(async (tx) => {
        const a = fieldOf(await tx.get(from), "balance") as number;
        const b = fieldOf(await tx.get(to), "balance") as number;
        await tx.patch(from, { balance: a - amount });
        await tx.patch(to, { balance: b + amount });
      });
      afterEach(++count);
      await sleep(3);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return count;
    },
  };
}

/** The ZIP holds every filler document and every account, with the balance total every transfer keeps. */
async function assertConsistentBank(zipPath: string): Promise<void> {
  assertEquals((await zipLines(zipPath, "filler/documents.jsonl")).length, FILLER_DOCUMENTS);
  const exported = await zipLines(zipPath, "accounts/documents.jsonl");
  assertEquals(exported.length, ACCOUNTS);
  assertEquals(exported.reduce((sum, a) => sum + (a.balance as number), 0), ACCOUNTS * START_BALANCE);
  assert(exported.some((a) => a.balance !== START_BALANCE), "the snapshot saw some transfers");
}

Deno.test({
  name: "snapshot holds: a slow `npx convex export` outlasting retention many times over is complete and consistent",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const deployment = await startShortRetentionDeployment();
    const app = await createConvexApp({});
    const work = await Deno.makeTempDir({ prefix: "denvex-hold-zip-" });
    const proxy = throttlingProxy(deployment.url, 3_000_000);
    const { database } = deployment;
    let transfers: Transfers | null = null;
    try {
      const accounts = await seedBank(database, FILLER_DOCUMENTS);
      // Retention is held back: without the hold the watermark would be past the export's snapshot.
      let rowsWhileHeld = 0;
      let sawHeldRetention = false;
      let exportTs: bigint | null = null;
      transfers = startTransfers(database, accounts, (count) => {
        const held = database.snapshotHolds.list().find((h) => h.reason === "an export download");
        if (!held) return;
        exportTs = held.ts;
        if (database.latestTs - WINDOW_NS > held.ts + WINDOW_NS) {
          sawHeldRetention ||= database.retainedSinceTs <= held.ts;
        }
        if (count % 20 === 0) rowsWhileHeld = Math.max(rowsWhileHeld, revisionRows(deployment.sqlitePath));
      });

      const zipPath = join(work, "slow.zip");
      const started = Date.now();
      const result = await runConvexCli(app, ["export", "--path", zipPath], {
        url: proxy.url,
        adminKey: deployment.adminKey,
      });
      const tookMs = Date.now() - started;
      assertEquals(result.code, 0, `export failed:\n${result.stdout}\n${result.stderr}`);
      assert(tookMs > 10 * RETENTION.retentionMs, `the export outlasted the retention window (${tookMs} ms)`);
      assert(exportTs !== null && sawHeldRetention, "retention was held back during the download");
      const transferCount = await transfers.stop();
      assert(transferCount > 50, `writes continued during the export (${transferCount} transfers)`);

      // Complete and consistent at one snapshot: every filler document, and the transfers' invariant.
      await assertConsistentBank(zipPath);

      // Finished: both holds (the request's and the download's) are released and retention resumes.
      assertEquals(database.snapshotHolds.count, 0);
      await waitFor(
        "retention to pass the export's snapshot",
        () => Promise.resolve(database.retainedSinceTs > exportTs!),
        Boolean,
      );
      while (!(await database.pruneNow(database.retainedSinceTs)).done) { /* finish the pass */ }
      const rowsAfter = revisionRows(deployment.sqlitePath);
      assert(rowsAfter < rowsWhileHeld - 50, `old revisions were pruned (${rowsWhileHeld} -> ${rowsAfter})`);
    } finally {
      await transfers?.stop();
      await proxy.close();
      await deployment.close();
      await app.dispose();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "snapshot holds: a client that goes away mid-download releases its hold",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const deployment = await startShortRetentionDeployment();
    const { database } = deployment;
    const headers = { Authorization: `Convex ${deployment.adminKey}` };
    try {
      for (let done = 0; done < 3_000; done += 500) {
        await database.runSystemTransaction(async (tx) => {
          for (let i = 0; i < 500; i++) await tx.insert("filler", { text: incompressible(FILLER_BYTES) });
        });
      }
      const requested = await fetch(`${deployment.url}/api/export/request/zip`, { method: "POST", headers });
      assertEquals(requested.status, 200);
      await requested.body?.cancel();
      const [requestHold] = database.snapshotHolds.list();
      assertEquals(requestHold.reason, "a requested export");

      const download = await fetch(`${deployment.url}/api/export/zip/${requestHold.ts}`, { headers });
      assertEquals(download.status, 200);
      const reader = download.body!.getReader();
      await reader.read();
      assertEquals(database.snapshotHolds.count, 2, "the download holds its snapshot");
      await reader.cancel();
      await waitFor(
        "the download's hold to be released",
        () => Promise.resolve(database.snapshotHolds.list().map((h) => h.reason).join(",")),
        (reasons) => reasons === "a requested export",
      );

      // A new request replaces the old one's hold; an unknown export is a clear 400.
      await (await fetch(`${deployment.url}/api/export/request/zip`, { method: "POST", headers })).body?.cancel();
      assertEquals(database.snapshotHolds.count, 1);
      const missing = await fetch(`${deployment.url}/api/export/zip/1`, { headers });
      assertEquals(missing.status, 400);
      assertEquals(((await missing.json()) as { code: string }).code, "ExportNotFound");
    } finally {
      await deployment.close();
    }
  },
});

Deno.test({
  name: "snapshot holds: a scheduled backup holds its snapshot while it writes and is consistent under transfers",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const deployment = await startShortRetentionDeployment({ backups: true });
    const { database } = deployment;
    let transfers: Transfers | null = null;
    try {
      const accounts = await seedBank(database, FILLER_DOCUMENTS);
      let sawBackupHold = false;
      transfers = startTransfers(database, accounts, () => {
        sawBackupHold ||= database.snapshotHolds.list().some((h) => h.reason === "a scheduled backup");
      });
      await sleep(100);
      const backup = await deployment.backend.backups!.backupNow();
      await sleep(100);
      const transferCount = await transfers.stop();
      assert(backup !== null && sawBackupHold, "the backup held its snapshot while transfers committed");
      assert(transferCount > 10, `writes continued during the backup (${transferCount} transfers)`);
      assertEquals(database.snapshotHolds.count, 0, "released once written");
      await assertConsistentBank(backup.path);
    } finally {
      await transfers?.stop();
      await deployment.close();
    }
  },
});
