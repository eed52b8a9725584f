/**
 * `npx convex export` / `import` through the official CLI against real servers: a round trip of every value type and
 * of stored files into a fresh server gives identical documents and bytes; an import with a bad last line changes
 * nothing; an import larger than one transaction's write limit commits whole; single-table `.json` and `.csv`
 * imports; and an export taken while transfers run keeps the transfers' invariant (the balance total).
 */
import { ConvexHttpClient } from "convex/browser";
import { convexToJson, type Value as ConvexValue } from "convex/values";
import { makeFunctionReference } from "convex/server";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import {
  type ConvexApp,
  createConvexApp,
  DEPLOY_ARGS,
  runConvexCli,
  type ServerProcess,
  spawnServer,
} from "./helpers/convex_app.ts";
import {
  applyExportContext,
  type ExportContext,
  readZipDirectory,
  readZipEntry,
  textLines,
} from "../src/snapshot/mod.ts";
import type { Value } from "../src/values/mod.ts";

const ACCOUNTS = 10;
const START_BALANCE = 100;

const DATA_MODULE = `
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";
export const insert = mutation({
  args: { table: v.string(), doc: v.any() },
  handler: async (ctx, { table, doc }) => await ctx.db.insert(table as any, doc),
});
export const all = query({
  args: { table: v.string() },
  handler: async (ctx, { table }) => await ctx.db.query(table as any).collect(),
});
export const seedAccounts = mutation({
  args: { count: v.number(), balance: v.number() },
  handler: async (ctx, { count, balance }) => {
    const ids = [];
    for (let i = 0; i < count; i++) ids.push(await ctx.db.insert("accounts", { owner: "owner" + i, balance }));
    return ids;
  },
});
export const transfer = mutation({
  args: { from: v.id("accounts"), to: v.id("accounts"), amount: v.number() },
  handler: async (ctx, { from, to, amount }) => {
    const a = (await ctx.db.get(from))!;
    const b = (await ctx.db.get(to))!;
    await ctx.db.patch(from, { balance: a.balance - amount });
    await ctx.db.patch(to, { balance: b.balance + amount });
  },
});
export const uploadUrl = mutation({ args: {}, handler: async (ctx) => await ctx.storage.generateUploadUrl() });
export const files = query({ args: {}, handler: async (ctx) => await ctx.db.system.query("_storage").collect() });
export const fileUrl = query({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.storage.getUrl(id) });
`;

const all = makeFunctionReference<"query", { table: string }, Record<string, ConvexValue>[]>("data:all");
const insert = makeFunctionReference<"mutation", { table: string; doc: ConvexValue }, string>("data:insert");
const seedAccounts = makeFunctionReference<"mutation", { count: number; balance: number }, string[]>(
  "data:seedAccounts",
);
const transfer = makeFunctionReference<"mutation", { from: string; to: string; amount: number }, null>(
  "data:transfer",
);
const uploadUrl = makeFunctionReference<"mutation", Record<string, never>, string>("data:uploadUrl");
const files = makeFunctionReference<"query", Record<string, never>, Record<string, ConvexValue>[]>("data:files");
const fileUrl = makeFunctionReference<"query", { id: string }, string | null>("data:fileUrl");

/** Documents whose values cover every type and the float and int64 edge values. */
function valueDocuments(accountId: string): Record<string, ConvexValue>[] {
  const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]).buffer;
  return [
    { kind: "int64", values: [0n, -1n, 9223372036854775807n, -9223372036854775808n] },
    { kind: "floats", nan: NaN, negZero: -0, inf: Infinity, negInf: -Infinity, tiny: 5e-324, max: Number.MAX_VALUE },
    { kind: "bytes", bytes, empty: new ArrayBuffer(0) },
    { kind: "strings", empty: "", looksInt: "123", looksNaN: "NaN", looksInf: "Infinity", unicode: 'héllo 😀\n"' },
    { kind: "nested", deep: { a: [1n, { b: bytes, c: [NaN, -0, "x"] }, null], "key with space": true }, list: [[[]]] },
    { kind: "ref", account: accountId, refs: [accountId, { inner: accountId }] },
    { kind: "plain", n: 1.5, b: false, nothing: null },
  ];
}

/** Rows of a table as comparable JSON text (convex-JSON keeps NaN, -0, int64 and bytes apart). */
async function tableJson(client: ConvexHttpClient, table: string): Promise<string[]> {
  const rows = await client.query(all, { table });
  return rows.map((row) => JSON.stringify(convexToJson(row))).sort();
}

async function deployApp(app: ConvexApp, server: ServerProcess): Promise<ConvexHttpClient> {
  const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
  assertEquals(deployed.code, 0, `deploy failed:\n${deployed.stdout}\n${deployed.stderr}`);
  const client = new ConvexHttpClient(server.url);
  return client;
}

async function cli(app: ConvexApp, server: ServerProcess, args: string[], expectCode = 0): Promise<string> {
  const result = await runConvexCli(app, args, server);
  const output = `${result.stdout}\n${result.stderr}`;
  assertEquals(result.code, expectCode, `npx convex ${args.join(" ")} exited ${result.code}:\n${output}`);
  return output;
}

/** The documents of `table` in an exported ZIP, decoded with their export contexts. */
async function zipTable(zipPath: string, table: string): Promise<Record<string, Value>[]> {
  const entries = await readZipDirectory(zipPath);
  const documentsEntry = entries.find((entry) => entry.path === `${table}/documents.jsonl`)!;
  const schemaEntry = entries.find((entry) => entry.path === `${table}/generated_schema.jsonl`)!;
  const contexts = new Map<string, ExportContext>();
  let first = true;
  for await (const line of textLines(readZipEntry(zipPath, schemaEntry))) {
    if (!first) {
      for (const [id, context] of Object.entries(JSON.parse(line))) contexts.set(id, context as ExportContext);
    }
    first = false;
  }
  const documents: Record<string, Value>[] = [];
  for await (const line of textLines(readZipEntry(zipPath, documentsEntry))) {
    const json = JSON.parse(line);
    documents.push(applyExportContext(json, contexts.get(json._id)) as Record<string, Value>);
  }
  return documents;
}

Deno.test({
  name: "snapshot: export and import through the official CLI",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const app = await createConvexApp({ "data.ts": DATA_MODULE });
    const source = await spawnServer();
    const target = await spawnServer();
    const work = await Deno.makeTempDir({ prefix: "denvex-snapshot-test-" });
    try {
      const sourceClient = await deployApp(app, source);
      const targetClient = await deployApp(app, target);
      const accountIds = await sourceClient.mutation(seedAccounts, { count: ACCOUNTS, balance: START_BALANCE });
      for (const doc of valueDocuments(accountIds[0])) await sourceClient.mutation(insert, { table: "values", doc });
      const fileBytes = new Uint8Array(300_000).map((_, i) => (i * 7919 + (i >> 8)) & 0xff);
      const upload = await fetch(await sourceClient.mutation(uploadUrl, {}), {
        method: "POST",
        headers: { "Content-Type": "image/png" },
        body: fileBytes,
      });
      const { storageId } = await upload.json();
      await sourceClient.mutation(insert, { table: "values", doc: { kind: "file", file: storageId } });
      const zipPath = join(work, "snapshot.zip");

      await t.step("the routes require the admin key", async () => {
        const response = await fetch(`${source.url}/api/export/request/zip?includeStorage=false`, { method: "POST" });
        assertEquals(response.status, 403);
        await response.body?.cancel();
      });

      await t.step("round trip of every value type and of stored files", async () => {
        const exported = await cli(app, source, ["export", "--path", zipPath, "--include-file-storage"]);
        assertStringIncludes(exported, "Downloaded snapshot export");
        const names = (await readZipDirectory(zipPath)).map((entry) => entry.path);
        for (
          const name of [
            "README.md",
            "values/documents.jsonl",
            "values/generated_schema.jsonl",
            "_storage/documents.jsonl",
          ]
        ) {
          assert(names.includes(name), `${name} missing from ${names}`);
        }
        const imported = await cli(app, target, ["import", zipPath, "--yes"]);
        assertStringIncludes(imported, "Added 19 documents");
        for (const table of ["accounts", "values"]) {
          assertEquals(await tableJson(targetClient, table), await tableJson(sourceClient, table), table);
        }
        const sourceFiles = (await sourceClient.query(files, {})).map((row) => JSON.stringify(convexToJson(row)));
        assertEquals(
          (await targetClient.query(files, {})).map((row) => JSON.stringify(convexToJson(row))),
          sourceFiles,
        );
        const url = await targetClient.query(fileUrl, { id: storageId });
        const served = new Uint8Array(await (await fetch(url!)).arrayBuffer());
        assertEquals(served, fileBytes);
      });

      await t.step("an import with a bad last line leaves the data untouched", async () => {
        const before = await tableJson(targetClient, "accounts");
        const bad = join(work, "bad.jsonl");
        await Deno.writeTextFile(bad, '{"owner": "new1", "balance": 1}\n{"owner": "new2", "balance": 2}\n{"owner": ');
        const output = await cli(app, target, ["import", "--table", "accounts", "--replace", "--yes", bad], 1);
        assertStringIncludes(output, "not valid JSON");
        const badZip = await cli(app, target, ["import", zipPath, "--yes"], 1);
        assertStringIncludes(badZip, "is not empty");
        assertEquals(await tableJson(targetClient, "accounts"), before);
      });

      await t.step("an import past one transaction's write limit, and .json and .csv tables", async () => {
        const bulk = join(work, "bulk.jsonl");
        const lines = Array.from(
          { length: 20_000 },
          (_, i) => JSON.stringify({ n: i, big: { $integer: "AQAAAAAAAAA=" } }),
        );
        await Deno.writeTextFile(bulk, lines.join("\n") + "\n");
        assertStringIncludes(
          await cli(app, target, ["import", "--table", "bulk", "--yes", bulk]),
          "Added 20000 documents",
        );
        const rows = await targetClient.query(all, { table: "bulk" });
        assertEquals(rows.length, 20_000);
        assertEquals(rows[0].big, 1n);
        const json = join(work, "people.json");
        await Deno.writeTextFile(json, JSON.stringify([{ name: "a", age: 1 }, { name: "b", tags: ["x"] }]));
        await cli(app, target, ["import", "--table", "people", "--yes", json]);
        const csv = join(work, "cities.csv");
        await Deno.writeTextFile(csv, 'name,population,capital\nParis,2100000,true\n"Saint-Denis, la",150000,false\n');
        await cli(app, target, ["import", "--table", "cities", "--yes", csv]);
        const cities = (await targetClient.query(all, { table: "cities" })).map(({ name, population, capital }) => ({
          name,
          population,
          capital,
        }));
        assertEquals(cities, [
          { name: "Paris", population: 2100000, capital: true },
          { name: "Saint-Denis, la", population: 150000, capital: false },
        ]);
        assertEquals((await targetClient.query(all, { table: "people" })).length, 2);
        // --replace-all empties the tables the file does not name.
        await cli(app, target, ["import", "--table", "people", "--replace-all", "--yes", json]);
        assertEquals((await targetClient.query(all, { table: "bulk" })).length, 0);
        assertEquals((await targetClient.query(all, { table: "people" })).length, 2);
      });

      await t.step("an export taken during transfers keeps the balance total", async () => {
        let stop = false;
        let transfers = 0;
        const load = Array.from({ length: 3 }, async (_, worker) => {
          const client = new ConvexHttpClient(source.url);
          for (let i = 0; !stop; i++) {
            const from = accountIds[(i + worker) % ACCOUNTS];
            const to = accountIds[(i * 7 + worker + 1) % ACCOUNTS];
            if (from === to) continue;
            await client.mutation(transfer, { from, to, amount: 1 + (i % 5) });
            transfers++;
          }
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        const loadedZip = join(work, "loaded.zip");
        await cli(app, source, ["export", "--path", loadedZip]);
        stop = true;
        await Promise.all(load);
        assert(transfers > 0, "no transfers ran");
        const accounts = await zipTable(loadedZip, "accounts");
        assertEquals(accounts.length, ACCOUNTS);
        const total = accounts.reduce((sum, account) => sum + (account.balance as number), 0);
        assertEquals(total, ACCOUNTS * START_BALANCE);
      });
    } finally {
      await source.close();
      await target.close();
      await app.dispose();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name: "snapshot: a kill -9 during an import leaves all of it or none",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const app = await createConvexApp({ "data.ts": DATA_MODULE });
    const work = await Deno.makeTempDir({ prefix: "denvex-snapshot-test-" });
    const dataDir = join(work, "data");
    await Deno.mkdir(dataDir);
    let server = await spawnServer({ dataDir });
    try {
      await deployApp(app, server);
      const documents = 60_000;
      const file = join(work, "many.jsonl");
      await Deno.writeTextFile(file, Array.from({ length: documents }, (_, i) => `{"n": ${i}}\n`).join(""));
      // Its own process: once the import runs the CLI follows it over a WebSocket, which would reconnect forever.
      const importing = new Deno.Command("node", {
        args: [join(app.dir, "node_modules/convex/bin/main.js"), "import", "--table", "many", "--yes", file],
        cwd: app.dir,
        clearEnv: true,
        env: {
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          HOME: app.dir,
          CONVEX_SELF_HOSTED_URL: server.url,
          CONVEX_SELF_HOSTED_ADMIN_KEY: server.adminKey,
          CI: "1",
        },
        stdout: "null",
        stderr: "null",
      }).spawn();
      const admin = new ConvexHttpClient(server.url);
      (admin as unknown as { setAdminAuth(key: string): void }).setAdminAuth(server.adminKey);
      const list = makeFunctionReference<
        "query",
        Record<string, never>,
        { state: { state: string; progress_message?: string } }[]
      >("_system/cli/queryImport:list");
      // 60,000 documents are staged in chunks: killed once some chunks are written and the switch is still ahead.
      let staging = false;
      for (let i = 0; i < 1200 && !staging; i++) {
        const imports = await admin.query(list, {}).catch(() => []);
        staging = imports.some((entry) => /documents written/.test(entry.state.progress_message ?? ""));
        if (!staging) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert(staging, "the import never reported a staged chunk");
      await server.kill();
      try {
        importing.kill("SIGKILL");
      } catch { /* the CLI had finished already */ }
      await importing.status;
      server = await spawnServer({ dataDir, adminKey: server.adminKey });
      const restarted = new ConvexHttpClient(server.url);
      (restarted as unknown as { setAdminAuth(key: string): void }).setAdminAuth(server.adminKey);
      const tableSize = makeFunctionReference<"query", { tableName: string }, number>("_system/cli/tableSize");
      const count = await restarted.query(tableSize, { tableName: "many" });
      assert(count === 0 || count === documents, `after a kill -9 mid-import the table holds ${count} documents`);
      if (count === 0) {
        // The crashed import's staging tables are removed and the same file imports whole.
        const again = await runConvexCli(app, ["import", "--table", "many", "--yes", file], server);
        assertStringIncludes(again.stdout + again.stderr, `Added ${documents} documents`);
        assertEquals(await restarted.query(tableSize, { tableName: "many" }), documents);
      }
    } finally {
      await server.close();
      await app.dispose();
      await Deno.remove(work, { recursive: true });
    }
  },
});
