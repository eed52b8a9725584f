/**
 * Scheduled backups into the file storage S3 bucket (issue 16), against s3rver (an S3-compatible server from npm, run
 * in this process): the store's backup calls (a multipart upload, listing, download, delete, refusal of keys outside
 * `_backups/`, an abandoned upload leaving nothing, the orphan sweep never seeing a backup), then end to end: the
 * real server with `--s3-endpoint` and `--backup-every` writes consistent backups into the bucket while transfers
 * run, keeps only the newest `--backup-keep`, lists them for the dashboard, and `denvex restore s3:<name>` brings
 * the newest back (documents, IDs and a stored file larger than one upload part) into a fresh data directory.
 */
import { startLocalS3 } from "./helpers/s3rver.ts";
import { ConvexHttpClient } from "convex/browser";
import { bank, bankModule } from "./helpers/bank_app.ts";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, spawnServer } from "./helpers/convex_app.ts";
import { S3_BACKUP_PREFIX, S3_PART_BYTES, S3BlobStore, type S3Options } from "../src/storage/mod.ts";
import { readZipDirectory, readZipEntry, textLines } from "../src/snapshot/mod.ts";

const REPO = new URL("../", import.meta.url).pathname;
const BUCKET = "denvex-backups-test";
const ACCOUNTS = 6;
const START_BALANCE = 100;
const KEEP = 2;
/** Larger than one upload part, so the backup holding it is a multipart upload. */
const FILE_BYTES = S3_PART_BYTES + 3 * 1024 * 1024;

const { seed, transfer, accounts, uploadUrl, fileUrl, backupList } = bank;
const BANK = bankModule(ACCOUNTS, START_BALANCE);

interface S3Fixture {
  options: S3Options;
  close(): Promise<void>;
}

async function startS3(): Promise<S3Fixture> {
  const s3 = await startLocalS3(BUCKET);
  return {
    options: {
      endpoint: s3.endpoint,
      bucket: BUCKET,
      region: "us-east-1",
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    },
    close: () => s3.close(),
  };
}

/** Incompressible bytes (xorshift), so a ZIP holding them is as large as they are. */
function testBytes(sizeBytes: number, seed: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(sizeBytes);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < sizeBytes; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state;
  }
  return bytes;
}

function streamOf(bytes: Uint8Array, chunkBytes: number, failAtEnd = false): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        return failAtEnd ? controller.error(new Error("the export failed")) : controller.close();
      }
      controller.enqueue(bytes.slice(offset, offset + chunkBytes));
      offset += chunkBytes;
    },
  });
}

async function rejects(run: () => Promise<unknown>, mention: string): Promise<void> {
  try {
    await run();
  } catch (error) {
    assertStringIncludes(String(error), mention);
    return;
  }
  throw new Error(`expected a failure mentioning ${mention}`);
}

Deno.test({
  name: "s3 backups: the store writes, lists, reads and deletes backups apart from blobs",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const s3 = await startS3();
    try {
      const store = await S3BlobStore.open(s3.options);
      const bytes = testBytes(S3_PART_BYTES * 2 + 12_345, 7);
      const key = `${S3_BACKUP_PREFIX}backup-20261130T000000Z-1.zip`;
      const written = await store.writeBackup(key, streamOf(bytes, 100_000));
      assertEquals(written.sizeBytes, bytes.length);
      assertEquals(await store.listBackups(), [{ key, sizeBytes: bytes.length }]);
      const read = new Uint8Array(await new Response(await store.streamBackup(key)).arrayBuffer());
      assertEquals(read.length, bytes.length);
      assert(read.every((byte, i) => byte === bytes[i]), "the backup reads back byte for byte");

      // A blob next to it: the sweep's listing sees the blob, never the backup.
      const blobKey = "kg2a1b2c3d4e5f6g7h8j9k0m1n2p3q4r";
      await store.write(blobKey, new Uint8Array([1, 2, 3]), 1024);
      assertEquals(await store.listOlderThan(Date.now() + 60_000, 100), [blobKey]);
      await rejects(() => store.write(key, new Uint8Array([1]), 1024), "Invalid storage key");
      await rejects(() => store.remove(key), "Invalid storage key");
      for (const bad of [blobKey, `${S3_BACKUP_PREFIX}../x.zip`, `${S3_BACKUP_PREFIX}`, "backups/x.zip"]) {
        await rejects(() => store.writeBackup(bad, streamOf(new Uint8Array(1), 1)), "Invalid backup object key");
      }

      // An export that fails part-way (after a part was uploaded) leaves no object behind.
      const failedKey = `${S3_BACKUP_PREFIX}backup-20261130T000001Z-2.zip`;
      await rejects(() => store.writeBackup(failedKey, streamOf(bytes, 1_000_000, true)), "the export failed");
      assertEquals((await store.listBackups()).map((object) => object.key), [key]);
      assertEquals(await store.streamBackup(failedKey), null);

      await store.removeBackup(key);
      await store.removeBackup(key);
      assertEquals(await store.listBackups(), []);
      assertEquals(await store.size(blobKey), 3);
    } finally {
      await s3.close();
    }
  },
});

Deno.test({
  name: "s3 backups: written to the bucket under writes, keep N, listed, restored with restore s3:<name>",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const s3 = await startS3();
    const app = await createConvexApp({ "bank.ts": BANK });
    const work = await Deno.makeTempDir({ prefix: "denvex-backup-s3-test-" });
    const sourceDir = join(work, "source");
    const restoredDir = join(work, "restored");
    await Deno.mkdir(sourceDir);
    await Deno.mkdir(restoredDir);
    const s3Flags = [`--s3-endpoint=${s3.options.endpoint}`, `--s3-bucket=${BUCKET}`];
    // The server children inherit these (the flags never carry secrets).
    Deno.env.set("DENVEX_S3_ACCESS_KEY_ID", s3.options.accessKeyId);
    Deno.env.set("DENVEX_S3_SECRET_ACCESS_KEY", s3.options.secretAccessKey);
    const store = await S3BlobStore.open(s3.options);
    const source = await spawnServer({
      dataDir: sourceDir,
      extraArgs: [...s3Flags, "--backup-every=1s", `--backup-keep=${KEEP}`],
    });
    let restored: Awaited<ReturnType<typeof spawnServer>> | null = null;
    try {
      const deployed = await runConvexCli(app, DEPLOY_ARGS, source);
      assertEquals(deployed.code, 0, deployed.stdout + deployed.stderr);
      const client = new ConvexHttpClient(source.url);
      const ids = await client.mutation(seed, {});
      const fileBytes = testBytes(FILE_BYTES, 3);
      const upload = await fetch(await client.mutation(uploadUrl, {}), { method: "POST", body: fileBytes });
      const { storageId } = await upload.json();

      const seen = new Set<string>();
      await t.step("backups go to the bucket every second while transfers run; only the newest stay", async () => {
        let stop = false;
        const load = Array.from({ length: 2 }, async (_, worker) => {
          const writer = new ConvexHttpClient(source.url);
          for (let i = 0; !stop; i++) {
            const from = ids[(i + worker) % ACCOUNTS];
            const to = ids[(i * 5 + worker + 1) % ACCOUNTS];
            if (from !== to) await writer.mutation(transfer, { from, to, amount: 1 + (i % 7) });
          }
        });
        const deadline = Date.now() + 60_000;
        while (seen.size < KEEP + 2 && Date.now() < deadline) {
          const listed = await store.listBackups();
          for (const object of listed) seen.add(object.key);
          // One over while a new backup is complete and the oldest not yet deleted.
          assert(listed.length <= KEEP + 1, `too many backups: ${listed.map((object) => object.key)}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        stop = true;
        await Promise.all(load);
        assert(seen.size >= KEEP + 2, `only ${seen.size} backups were written in 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        const left = (await store.listBackups()).map((object) => object.key);
        assertEquals(left.length, KEEP);
        for (const key of left) seen.add(key);
        assertEquals(left, [...seen].sort().slice(-KEEP));
        assert((await Deno.stat(join(sourceDir, "backups")).catch(() => null)) === null, "no local backup folder");
      });

      const newest = (await store.listBackups()).at(-1)!;
      const newestName = newest.key.slice(S3_BACKUP_PREFIX.length);
      const localCopy = join(work, "newest.zip");
      await t.step(
        "the dashboard lists the bucket's backups; each holds a consistent snapshot and the file",
        async () => {
          const admin = new ConvexHttpClient(source.url);
          (admin as unknown as { setAdminAuth(key: string): void }).setAdminAuth(source.adminKey);
          const listed = await admin.query(backupList, {}) as {
            kind: string;
            keep: number;
            backups: { name: string }[];
          };
          assertEquals([listed.kind, listed.keep], ["s3", KEEP]);
          const names = (await store.listBackups()).map((object) => object.key.slice(S3_BACKUP_PREFIX.length));
          assertEquals(listed.backups.map((backup) => backup.name), names.reverse());
          assert(newest.sizeBytes > FILE_BYTES, "the backup holds the file");
          await Deno.writeFile(localCopy, (await store.streamBackup(newest.key))!);
          const entries = (await readZipDirectory(localCopy)).map((entry) => entry.path);
          assert(entries.includes(`_storage/${storageId}`), `the file is missing from ${entries}`);
          const balances = await zipLines(localCopy, "accounts/documents.jsonl");
          const total = balances.reduce((sum, line) => sum + (JSON.parse(line).balance as number), 0);
          assertEquals([balances.length, total], [ACCOUNTS, ACCOUNTS * START_BALANCE]);
        },
      );

      await t.step("restore s3:<name> refuses a name the bucket lacks and changes nothing", async () => {
        const missing = await restoreFromBucket("s3:backup-20000101T000000Z-1.zip", restoredDir, s3Flags);
        assertEquals(missing.code, 1, missing.output);
        assertStringIncludes(missing.output, "the bucket has no backup");
        const malformed = await restoreFromBucket("s3:../x.zip", restoredDir, s3Flags);
        assertEquals(malformed.code, 1, malformed.output);
        assertStringIncludes(malformed.output, "a backup name looks like");
      });

      await t.step("restore s3:<name> brings the newest backup back into a fresh data directory", async () => {
        const done = await restoreFromBucket(`s3:${newestName}`, restoredDir, s3Flags);
        assertEquals(done.code, 0, done.output);
        assertStringIncludes(done.output, "restored");
        const leftovers = [...Deno.readDirSync(restoredDir)].filter((entry) => entry.name.startsWith(".restore-"));
        assertEquals(leftovers, [], "the downloaded ZIP is removed");
        restored = await spawnServer({ dataDir: restoredDir, extraArgs: s3Flags });
        const redeployed = await runConvexCli(app, DEPLOY_ARGS, restored);
        assertEquals(redeployed.code, 0, redeployed.stdout + redeployed.stderr);
        const restoredClient = new ConvexHttpClient(restored.url);
        const rows = await restoredClient.query(accounts, {});
        assertEquals(rows.map((row) => row._id).sort(), [...ids].sort());
        const expected = await zipLines(localCopy, "accounts/documents.jsonl");
        assertEquals(
          rows.map((row) => `${row._id}:${row.balance}`).sort(),
          expected.map((line) => JSON.parse(line)).map((row) => `${row._id}:${row.balance}`).sort(),
        );
        const url = await restoredClient.query(fileUrl, { id: storageId });
        const served = new Uint8Array(await (await fetch(url!)).arrayBuffer());
        assertEquals(served.length, fileBytes.length);
        assert(served.every((byte, i) => byte === fileBytes[i]), "the restored file is byte for byte the same");
      });
    } finally {
      await source.close();
      await (restored as { close(): Promise<void> } | null)?.close();
      await app.dispose();
      await s3.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});

/** `main.ts restore <source> --data <dir> <s3 flags>` with the grants a restore from the bucket needs. */
async function restoreFromBucket(source: string, dataDir: string, s3Flags: string[]) {
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--cached-only",
      "--no-prompt",
      `--allow-read=${dataDir}`,
      `--allow-write=${dataDir}`,
      "--allow-env",
      "--allow-net=127.0.0.1",
      join(REPO, "main.ts"),
      "restore",
      source,
      `--data=${dataDir}`,
      ...s3Flags,
    ],
    cwd: REPO,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENVEX_S3_ACCESS_KEY_ID: "S3RVER",
      DENVEX_S3_SECRET_ACCESS_KEY: "S3RVER",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: result.code, output: decoder.decode(result.stdout) + decoder.decode(result.stderr) };
}

async function zipLines(zipPath: string, entryPath: string): Promise<string[]> {
  const entry = (await readZipDirectory(zipPath)).find((candidate) => candidate.path === entryPath)!;
  const lines: string[] = [];
  for await (const line of textLines(readZipEntry(zipPath, entry))) lines.push(line);
  return lines;
}
