/**
 * Export and import beyond the app's own tables, through the official CLI against real servers: component data
 * travels under Convex's `_components/<name>/` folders (nested instances nest) and comes back with its IDs;
 * `denvex restore` of it into a fresh data directory keeps it for the next push; `--component` imports one table into
 * a component; a ZIP naming a component that is not mounted fails clearly; the
 * CLI prints the import's progress lines; and a ZIP shaped like a Convex Cloud export (built here by hand from
 * Convex's documented layout: stored entries, directory entries, a real shape line, table numbers with gaps, its own
 * `_storage` table number, a component's per-namespace numbering) imports with IDs, int64 values, references and
 * files intact.
 */
import { ConvexHttpClient } from "convex/browser";
import { convexToJson } from "convex/values";
import { anyApi } from "convex/server";
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
import { runRestore } from "./helpers/denvex_restore.ts";
import { crc32, readZipDirectory } from "../src/snapshot/mod.ts";
import { encodeDocumentId } from "../src/values/mod.ts";

const api = anyApi;

const APP: Record<string, string> = {
  "convex.config.ts": `
import { defineApp } from "convex/server";
import counter from "./counter/convex.config";
const app = defineApp();
app.use(counter);
export default app;
`,
  "main.ts": `
import { query, mutation } from "./_generated/server";
import { components } from "./_generated/api";
import { v } from "convex/values";
export const note = mutation({ args: { text: v.string() }, handler: async (ctx, { text }) => await ctx.db.insert("notes", { text }) });
export const all = query({ args: { table: v.string() }, handler: async (ctx, { table }) => await ctx.db.query(table as any).collect() });
export const count = mutation({ args: { n: v.number() }, handler: async (ctx, { n }) => await ctx.runMutation(components.counter.lib.add, { n }) });
export const item = mutation({ args: { label: v.string() }, handler: async (ctx, { label }) => await ctx.runMutation(components.counter.lib.addItem, { label }) });
export const counts = query({ args: {}, handler: async (ctx) => await ctx.runQuery(components.counter.lib.all, {}) });
export const items = query({ args: {}, handler: async (ctx) => await ctx.runQuery(components.counter.lib.items, {}) });
export const fileUrl = query({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.storage.getUrl(id) });
`,
  "counter/convex.config.ts": `
import { defineComponent } from "convex/server";
import leaf from "../leaf/convex.config";
const counter = defineComponent("counter");
counter.use(leaf);
export default counter;
`,
  "counter/lib.ts": `
import { query, mutation } from "./_generated/server";
import { components } from "./_generated/api";
import { v } from "convex/values";
export const add = mutation({ args: { n: v.number() }, handler: async (ctx, { n }) => await ctx.db.insert("counts", { n }) });
export const all = query({ args: {}, handler: async (ctx) => await ctx.db.query("counts").collect() });
export const addItem = mutation({ args: { label: v.string() }, handler: async (ctx, { label }) => await ctx.runMutation(components.leaf.lib.add, { label }) });
export const items = query({ args: {}, handler: async (ctx) => await ctx.runQuery(components.leaf.lib.all, {}) });
`,
  "leaf/convex.config.ts": `
import { defineComponent } from "convex/server";
export default defineComponent("leaf");
`,
  "leaf/lib.ts": `
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const add = mutation({ args: { label: v.string() }, handler: async (ctx, { label }) => await ctx.db.insert("items", { label }) });
export const all = query({ args: {}, handler: async (ctx) => await ctx.db.query("items").collect() });
`,
};

async function cli(app: ConvexApp, server: ServerProcess, args: readonly string[], expectCode = 0): Promise<string> {
  const result = await runConvexCli(app, args, server);
  const output = `${result.stdout}\n${result.stderr}`;
  assertEquals(result.code, expectCode, `npx convex ${args.join(" ")} exited ${result.code}:\n${output}`);
  return output;
}

function rowsJson(rows: unknown[]): string[] {
  return rows.map((row) => JSON.stringify(convexToJson(row as never))).sort();
}

/**
 * A ZIP the way general-purpose tools write one: entries stored (method 0) with their sizes and CRC in the local
 * header, and directory entries for folders. Deliberately not src/snapshot's writer.
 */
function storedZip(files: [string, string | Uint8Array][]): Uint8Array {
  const encoder = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  const folders = new Set<string>();
  const entries: [string, Uint8Array][] = [];
  for (const [path, content] of files) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const folder = parts.slice(0, i).join("/") + "/";
      if (!folders.has(folder)) entries.push([folder, new Uint8Array()]);
      folders.add(folder);
    }
    entries.push([path, typeof content === "string" ? encoder.encode(content) : content]);
  }
  for (const [path, data] of entries) {
    const name = encoder.encode(path);
    const crc = crc32(0, data);
    const local = new Uint8Array(30 + name.length + data.length);
    const view = new DataView(local.buffer);
    view.setUint32(0, 0x04034b50, true);
    view.setUint16(4, 10, true);
    view.setUint32(14, crc, true);
    view.setUint32(18, data.length, true);
    view.setUint32(22, data.length, true);
    view.setUint16(26, name.length, true);
    local.set(name, 30);
    local.set(data, 30 + name.length);
    const central = new Uint8Array(46 + name.length);
    const cview = new DataView(central.buffer);
    cview.setUint32(0, 0x02014b50, true);
    cview.setUint16(4, 20, true);
    cview.setUint16(6, 10, true);
    cview.setUint32(16, crc, true);
    cview.setUint32(20, data.length, true);
    cview.setUint32(24, data.length, true);
    cview.setUint16(28, name.length, true);
    cview.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local);
    centrals.push(central);
    offset += local.length;
  }
  const centralBytes = centrals.reduce((sum, c) => sum + c.length, 0);
  const end = new Uint8Array(22);
  const eview = new DataView(end.buffer);
  eview.setUint32(0, 0x06054b50, true);
  eview.setUint16(8, entries.length, true);
  eview.setUint16(10, entries.length, true);
  eview.setUint32(12, centralBytes, true);
  eview.setUint32(16, offset, true);
  const all = [...locals, ...centrals, end];
  const out = new Uint8Array(all.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of all) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function idOf(tableNumber: number, seed: number): string {
  return encodeDocumentId(tableNumber, new Uint8Array(16).map((_, i) => (seed * 37 + i * 11) & 0xff));
}

async function sha256Base64(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return btoa(String.fromCharCode(...digest));
}

/** A Convex Cloud style snapshot: see the module comment. */
async function cloudZip(fileBytes: Uint8Array) {
  const ada = idOf(10005, 1);
  const grace = idOf(10005, 2);
  const message = idOf(10007, 3);
  // Cloud's own `_storage` number: not this deployment's, so the file's ID (and the reference to it) translate.
  const file = idOf(29, 4);
  const componentCount = idOf(10001, 5);
  const jsonl = (rows: unknown[]) => rows.map((row) => JSON.stringify(row)).join("\n") + "\n";
  const zip = storedZip([
    ["README.md", "# Welcome to your Convex snapshot export!\n"],
    ["_tables/documents.jsonl", jsonl([{ name: "users", id: 10005 }, { name: "messages", id: 10007 }])],
    [
      "users/generated_schema.jsonl",
      jsonl([
        "{_creationTime: normalfloat64, _id: id<users>, name: string, visits: int64}",
        { [ada]: { visits: "int64" } },
        { [grace]: { visits: "int64" } },
      ]),
    ],
    [
      "users/documents.jsonl",
      jsonl([
        { _creationTime: 1700000000000.5, _id: ada, name: "Ada", visits: "12" },
        { _creationTime: 1700000000001.25, _id: grace, name: "Grace", visits: "-9223372036854775808" },
      ]),
    ],
    ["messages/generated_schema.jsonl", jsonl(["{_creationTime: normalfloat64, _id: id<messages>, ...}"])],
    [
      "messages/documents.jsonl",
      jsonl([{ _creationTime: 1700000000002, _id: message, author: ada, body: "hi", attachment: file }]),
    ],
    [
      "_storage/documents.jsonl",
      jsonl([{
        _creationTime: 1700000000003,
        _id: file,
        sha256: await sha256Base64(fileBytes),
        size: fileBytes.length,
        contentType: "text/plain",
      }]),
    ],
    [`_storage/${file}.txt`, fileBytes],
    ["_components/counter/_tables/documents.jsonl", jsonl([{ name: "counts", id: 10001 }])],
    ["_components/counter/counts/generated_schema.jsonl", jsonl(["{_creationTime: normalfloat64, n: float64}"])],
    [
      "_components/counter/counts/documents.jsonl",
      jsonl([{ _creationTime: 1700000000004, _id: componentCount, n: 7 }]),
    ],
  ]);
  return { zip, ada, grace, message, file, componentCount };
}

Deno.test({
  name: "snapshot: component data, --component, progress lines and a Convex Cloud shaped ZIP",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const app = await createConvexApp(APP);
    const source = await spawnServer();
    const target = await spawnServer();
    const cloud = await spawnServer();
    const work = await Deno.makeTempDir({ prefix: "denvex-snapshot-components-" });
    try {
      for (const server of [source, target, cloud]) await cli(app, server, DEPLOY_ARGS);
      const sourceClient = new ConvexHttpClient(source.url);
      const targetClient = new ConvexHttpClient(target.url);
      for (const text of ["a", "b", "c"]) await sourceClient.mutation(api.main.note, { text });
      for (const n of [1, 2, 3, 4]) await sourceClient.mutation(api.main.count, { n });
      for (const label of ["x", "y"]) await sourceClient.mutation(api.main.item, { label });
      const zipPath = join(work, "components.zip");

      await t.step("component tables export under _components/ and import with their IDs", async () => {
        await cli(app, source, ["export", "--path", zipPath]);
        const names = (await readZipDirectory(zipPath)).map((entry) => entry.path);
        for (
          const name of [
            "notes/documents.jsonl",
            "_components/counter/_tables/documents.jsonl",
            "_components/counter/counts/documents.jsonl",
            "_components/counter/_components/leaf/items/documents.jsonl",
          ]
        ) assert(names.includes(name), `${name} missing from ${names}`);
        const output = await cli(app, target, ["import", zipPath, "--yes"]);
        assertStringIncludes(output, "counter/counts | 4");
        assertStringIncludes(output, "Added 9 documents");
        assertEquals(
          rowsJson(await targetClient.query(api.main.all, { table: "notes" })),
          rowsJson(await sourceClient.query(api.main.all, { table: "notes" })),
        );
        assertEquals(
          rowsJson(await targetClient.query(api.main.counts, {})),
          rowsJson(await sourceClient.query(api.main.counts, {})),
        );
        assertEquals(
          rowsJson(await targetClient.query(api.main.items, {})),
          rowsJson(await sourceClient.query(api.main.items, {})),
        );
      });

      await t.step("denvex restore into a fresh data directory: the next push finds the component data", async () => {
        const dataDir = join(work, "restored");
        await Deno.mkdir(dataDir);
        const restored = await runRestore(zipPath, dataDir);
        assertEquals(restored.code, 0, restored.output);
        const server = await spawnServer({ dataDir });
        try {
          await cli(app, server, DEPLOY_ARGS);
          const client = new ConvexHttpClient(server.url);
          assertEquals(
            rowsJson(await client.query(api.main.counts, {})),
            rowsJson(await sourceClient.query(api.main.counts, {})),
          );
          assertEquals(
            rowsJson(await client.query(api.main.items, {})),
            rowsJson(await sourceClient.query(api.main.items, {})),
          );
        } finally {
          await server.close();
        }
      });

      await t.step("--component imports one table into a component", async () => {
        const file = join(work, "counts.jsonl");
        await Deno.writeTextFile(file, '{"n": 10}\n{"n": 20}\n');
        await cli(app, target, ["import", "--component", "counter", "--table", "counts", "--append", "--yes", file]);
        const counts = await targetClient.query(api.main.counts, {});
        assertEquals(counts.map((row: { n: number }) => row.n).sort((a: number, b: number) => a - b), [
          1,
          2,
          3,
          4,
          10,
          20,
        ]);
      });

      await t.step("a component that is not mounted fails the import and changes nothing", async () => {
        const ghost = join(work, "ghost.zip");
        await Deno.writeFile(
          ghost,
          storedZip([
            ["notes/documents.jsonl", '{"text": "never"}\n'],
            ["_components/ghost/things/documents.jsonl", '{"a": 1}\n'],
          ]),
        );
        const output = await cli(app, target, ["import", "--append", ghost, "--yes"], 1);
        assertStringIncludes(output, 'the component "ghost" is not mounted here');
        assertEquals((await targetClient.query(api.main.all, { table: "notes" })).length, 3);
      });

      await t.step("the CLI prints the import's progress lines", async () => {
        const bulk = join(work, "bulk.jsonl");
        await Deno.writeTextFile(bulk, Array.from({ length: 40_000 }, (_, i) => `{"i": ${i}}\n`).join(""));
        const output = await cli(app, target, ["import", "--table", "bulk", "--yes", bulk]);
        assertStringIncludes(output, 'Read 40000 documents of "bulk"');
        assertStringIncludes(output, "Added 40000 documents");
      });

      await t.step(
        "a ZIP shaped like a Convex Cloud export imports with IDs, int64, references and files",
        async () => {
          const fileBytes = new TextEncoder().encode("hello from the cloud\n".repeat(100));
          const built = await cloudZip(fileBytes);
          const path = join(work, "cloud.zip");
          await Deno.writeFile(path, built.zip);
          const output = await cli(app, cloud, ["import", path, "--yes"]);
          assertStringIncludes(output, "Added 5 documents");
          const client = new ConvexHttpClient(cloud.url);
          const users = await client.query(api.main.all, { table: "users" });
          assertEquals(
            users.map((user: Record<string, unknown>) => [user._id, user._creationTime, user.name, user.visits]),
            [
              [built.ada, 1700000000000.5, "Ada", 12n],
              [built.grace, 1700000000001.25, "Grace", -9223372036854775808n],
            ],
          );
          const [message] = await client.query(api.main.all, { table: "messages" });
          assertEquals([message._id, message.author, message.body], [built.message, built.ada, "hi"]);
          assert(message.attachment !== built.file, "the storage ID should have this deployment's _storage number");
          const url = await client.query(api.main.fileUrl, { id: message.attachment });
          const served = await fetch(url!);
          assertEquals(new Uint8Array(await served.arrayBuffer()), fileBytes);
          assertEquals(served.headers.get("content-type"), "text/plain");
          const counts = await client.query(api.main.counts, {});
          assertEquals(counts.map((row: { n: number }) => row.n), [7]);
        },
      );
    } finally {
      await source.close();
      await target.close();
      await cloud.close();
      await app.dispose();
      await Deno.remove(work, { recursive: true });
    }
  },
});
