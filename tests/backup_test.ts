/**
 * Scheduled backups and `denvex restore`, against the real server process: the flags are checked before anything
 * opens; backups taken every second while transfers run are each consistent (the balance total holds) and only the
 * newest `--backup-keep` stay; `denvex restore` refuses a data directory a server is using, leaves the data as it
 * was when the ZIP is bad, and brings the newest backup (documents with their IDs, and stored files) back into a
 * fresh data directory that then serves it. The dashboard's `_system/frontend/backups:list` lists them.
 */
import { ConvexHttpClient } from "convex/browser";
import { bank, bankModule } from "./helpers/bank_app.ts";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, spawnServer } from "./helpers/convex_app.ts";
import { runRestore } from "./helpers/denvex_restore.ts";
import { spawnServerChild } from "./helpers/server_child.ts";
import { parseCommandLine, UsageError } from "../src/server/mod.ts";
import {
  listBackups,
  parseBackupFlags,
  parseDuration,
  readZipDirectory,
  readZipEntry,
  textLines,
} from "../src/snapshot/mod.ts";

const ACCOUNTS = 8;
const START_BALANCE = 100;

const { seed, transfer, accounts, transferCount, uploadUrl, backupList, fileUrl } = bank;
const BANK = bankModule(ACCOUNTS, START_BALANCE);

Deno.test("backup flags: durations, limits and the restore command line", () => {
  assertEquals(parseDuration("90s"), 90_000);
  assertEquals(parseDuration("1h30m"), 5_400_000);
  assertEquals(parseDuration("1d"), 86_400_000);
  for (const bad of ["", "10", "5x", "1.5h", "-1s", "h"]) assertThrows(() => parseDuration(bad), Error, "duration");
  assertEquals(parseBackupFlags(undefined, undefined, undefined), null);
  assertEquals(parseBackupFlags("6h", undefined, undefined), { everyMs: 21_600_000, dir: null, keep: 7 });
  const env = () => undefined;
  const serve = parseCommandLine(["--backup-every", "2s", "--backup-keep", "3", "--backup-dir", "/b"], env);
  assert(serve.kind === "serve");
  assertEquals(serve.config.backup, { everyMs: 2_000, dir: "/b", keep: 3 });
  for (
    const [args, message] of [
      [["--backup-every", "10ms"], "between 1s and 24d"],
      [["--backup-every", "1s", "--backup-keep", "0"], "--backup-keep"],
      [["--backup-keep", "3"], "need --backup-every"],
      [["--backup-every", "soon"], "duration"],
      [["restore"], "needs the ZIP"],
      [["restore", "--data", "x"], "needs the ZIP"],
    ] as const
  ) {
    assertThrows(() => parseCommandLine([...args], env), UsageError, message);
  }
  const restoreCommand = parseCommandLine(["restore", "b.zip", "--data", "d"], env);
  assert(restoreCommand.kind === "restore");
  assertEquals([restoreCommand.zipPath, restoreCommand.config.dataDir], ["b.zip", "d"]);
});

Deno.test({
  name: "a --backup-dir the server may not write stops the start with a message naming the grant",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-backup-test-" });
    const elsewhere = await Deno.makeTempDir({ prefix: "denvex-backup-elsewhere-" });
    try {
      const child = await spawnServerChild(dataDir, ["--backup-every=1h", `--backup-dir=${elsewhere}`]);
      assertEquals(await child.exited(), 1, child.output());
      assertStringIncludes(child.output(), `cannot write backups to ${elsewhere}: grant it with --allow-read and`);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
      await Deno.remove(elsewhere, { recursive: true });
    }
  },
});

Deno.test({
  name: "backups under writes are consistent, keep N, and restore into a fresh data directory",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const app = await createConvexApp({ "bank.ts": BANK });
    const work = await Deno.makeTempDir({ prefix: "denvex-backup-test-" });
    const sourceDir = join(work, "source");
    const restoredDir = join(work, "restored");
    await Deno.mkdir(sourceDir);
    const keep = 2;
    const source = await spawnServer({ dataDir: sourceDir, extraArgs: ["--backup-every=1s", `--backup-keep=${keep}`] });
    let restored: Awaited<ReturnType<typeof spawnServer>> | null = null;
    try {
      const deployed = await runConvexCli(app, DEPLOY_ARGS, source);
      assertEquals(deployed.code, 0, deployed.stdout + deployed.stderr);
      const client = new ConvexHttpClient(source.url);
      const ids = await client.mutation(seed, {});
      const fileBytes = new Uint8Array(50_000).map((_, i) => (i * 31) & 0xff);
      const upload = await fetch(await client.mutation(uploadUrl, {}), { method: "POST", body: fileBytes });
      const { storageId } = await upload.json();

      const backupDir = join(sourceDir, "backups");
      const seen = new Set<string>();
      await t.step("backups are written every second while transfers run, and only the newest stay", async () => {
        let stop = false;
        const load = Array.from({ length: 3 }, async (_, worker) => {
          const writer = new ConvexHttpClient(source.url);
          for (let i = 0; !stop; i++) {
            const from = ids[(i + worker) % ACCOUNTS];
            const to = ids[(i * 5 + worker + 1) % ACCOUNTS];
            if (from !== to) await writer.mutation(transfer, { from, to, amount: 1 + (i % 7) });
          }
        });
        const deadline = Date.now() + 30_000;
        while (seen.size < keep + 2 && Date.now() < deadline) {
          for (const backup of await listBackups(backupDir)) seen.add(backup.name);
          const files = [...Deno.readDirSync(backupDir)].map((entry) => entry.name);
          assert(files.filter((name) => name.endsWith(".zip")).length <= keep + 1, `too many: ${files}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        stop = true;
        await Promise.all(load);
        assert(seen.size >= keep + 2, `only ${seen.size} backups were written in 30 s`);
        // The newest ones stay: what the directory holds once the scheduler settles is a suffix of what it wrote.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        const left = (await listBackups(backupDir)).map((backup) => backup.name);
        assertEquals(left.length, keep);
        for (const name of left) seen.add(name);
        assertEquals(left, [...seen].sort().slice(-keep));
      });

      const newest = (await listBackups(backupDir)).at(-1)!;
      await t.step("each backup holds a consistent snapshot and the files", async () => {
        const names = (await readZipDirectory(newest.path)).map((entry) => entry.path);
        for (const name of ["accounts/documents.jsonl", "transfers/documents.jsonl", "_storage/documents.jsonl"]) {
          assert(names.includes(name), `${name} missing from ${names}`);
        }
        assert(names.includes(`_storage/${storageId}`));
        const admin = new ConvexHttpClient(source.url);
        (admin as unknown as { setAdminAuth(key: string): void }).setAdminAuth(source.adminKey);
        const listed = await admin.query(backupList, {}) as { keep: number; backups: { name: string }[] };
        assertEquals(listed.keep, keep);
        assertEquals(
          listed.backups.map((backup) => backup.name),
          (await listBackups(backupDir)).map((b) => b.name).reverse(),
        );
        for (const backup of await listBackups(backupDir)) {
          const balances = await zipLines(backup.path, "accounts/documents.jsonl");
          const total = balances.reduce((sum, line) => sum + (JSON.parse(line).balance as number), 0);
          assertEquals([balances.length, total], [ACCOUNTS, ACCOUNTS * START_BALANCE], backup.name);
        }
      });

      await t.step("restore refuses a data directory a server is using", async () => {
        const refused = await runRestore(newest.path, sourceDir);
        assertEquals(refused.code, 1, refused.output);
        assertStringIncludes(refused.output, "in use");
      });

      const copy = join(work, "backup.zip");
      await Deno.copyFile(newest.path, copy);
      await t.step("restore brings the backup back; a bad ZIP afterwards changes nothing", async () => {
        await Deno.mkdir(restoredDir);
        const done = await runRestore(copy, restoredDir);
        assertEquals(done.code, 0, done.output);
        assertStringIncludes(done.output, "restored");
        const broken = join(work, "broken.zip");
        const bytes = await Deno.readFile(copy);
        await Deno.writeFile(broken, bytes.subarray(0, bytes.length - 200));
        const bad = await runRestore(broken, restoredDir);
        assertEquals(bad.code, 1, bad.output);
        assertStringIncludes(bad.output, "nothing was changed");
      });

      await t.step("the restored deployment serves the backup's documents, IDs and files", async () => {
        restored = await spawnServer({ dataDir: restoredDir });
        const redeployed = await runConvexCli(app, DEPLOY_ARGS, restored);
        assertEquals(redeployed.code, 0, redeployed.stdout + redeployed.stderr);
        const restoredClient = new ConvexHttpClient(restored.url);
        const rows = await restoredClient.query(accounts, {});
        assertEquals(rows.map((row) => row._id).sort(), [...ids].sort());
        assertEquals(rows.reduce((sum, row) => sum + row.balance, 0), ACCOUNTS * START_BALANCE);
        const transfers = await restoredClient.query(transferCount, {});
        const expectedTransfers = (await zipLines(copy, "transfers/documents.jsonl")).length;
        assertEquals(transfers, expectedTransfers);
        const url = await restoredClient.query(fileUrl, { id: storageId });
        assertEquals(new Uint8Array(await (await fetch(url!)).arrayBuffer()), fileBytes);
      });
    } finally {
      await source.close();
      await (restored as { close(): Promise<void> } | null)?.close();
      await app.dispose();
      await Deno.remove(work, { recursive: true });
    }
  },
});

async function zipLines(zipPath: string, entryPath: string): Promise<string[]> {
  const entry = (await readZipDirectory(zipPath)).find((candidate) => candidate.path === entryPath)!;
  const lines: string[] = [];
  for await (const line of textLines(readZipEntry(zipPath, entry))) lines.push(line);
  return lines;
}
