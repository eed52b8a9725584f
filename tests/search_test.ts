/** Full-text search (`withSearchIndex`, convex-compat.md §4.5): ranking, prefixes, filters, limits, reactivity, push. */
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals, waitFor } from "./helpers/assert.ts";
import { startTestServer, SYNC_APP_FILES, type TestServer } from "./helpers/sync_app.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, startTestDeployment } from "./helpers/convex_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { searchTerms, tokenize } from "../src/database/search.ts";
import { parseSchema } from "../src/deploy/schema.ts";
import type { JsonValue } from "../src/values/types.ts";

const api = anyApi;

const SCHEMA = `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({
  messages: defineTable({ channel: v.string(), body: v.string() })
    .index("by_channel", ["channel"])
    .searchIndex("search_body", { searchField: "body", filterFields: ["channel"] }),
});
`;

const SEARCH_MODULE = `
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";

const searchArgs = { text: v.string(), channel: v.optional(v.string()) };
function search(ctx, { text, channel }) {
  return ctx.db.query("messages").withSearchIndex("search_body", (q) => {
    const s = q.search("body", text);
    return channel === undefined ? s : s.eq("channel", channel);
  });
}
export const find = query({
  args: searchArgs,
  handler: async (ctx, args) => (await search(ctx, args).collect()).map((m) => m.body),
});
export const take2 = query({
  args: searchArgs,
  handler: async (ctx, args) => (await search(ctx, args).take(2)).map((m) => m.body),
});
export const first = query({
  args: searchArgs,
  handler: async (ctx, args) => (await search(ctx, args).first())?.body ?? null,
});
export const filtered = query({
  args: searchArgs,
  handler: async (ctx, args) =>
    (await search(ctx, args).filter((q) => q.neq(q.field("channel"), "c")).collect()).map((m) => m.body),
});
export const page = query({
  args: { ...searchArgs, cursor: v.union(v.string(), v.null()) },
  handler: async (ctx, { cursor, ...args }) => {
    const result = await search(ctx, args).paginate({ numItems: 2, cursor });
    return { page: result.page.map((m) => m.body), isDone: result.isDone, cursor: result.continueCursor };
  },
});
export const unknownIndex = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("messages").withSearchIndex("nope", (q) => q.search("body", "x")).collect(),
});
export const insertThenFind = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    await ctx.db.insert("messages", { channel: "m", body: "zebra " + text });
    return (await search(ctx, { text: "zebra" }).collect()).map((m) => m.body);
  },
});
export const send = mutation({
  args: { channel: v.string(), body: v.string() },
  handler: async (ctx, args) => await ctx.db.insert("messages", args),
});
`;

const FILES: Record<string, string> = {
  "_generated/server.ts": SYNC_APP_FILES["_generated/server.ts"],
  "schema.ts": SCHEMA,
  "search.ts": SEARCH_MODULE,
};

const LONG = "apple is a fruit that grows on trees in many orchards around the world";

async function withSearchServer(fn: (server: TestServer, http: ConvexHttpClient) => Promise<void>): Promise<void> {
  const server = await startTestServer({ files: FILES });
  try {
    // startTestServer does not run the push protocol: register the schema's search index the way a push would.
    await server.backend.database.updateCatalog((catalog) => ({
      ...catalog,
      tables: catalog.tables.map((table) =>
        table.name === "messages"
          ? {
            ...table,
            searchIndexes: [{
              name: "messages.search_body",
              searchField: "body",
              filterFields: ["channel"],
              indexId: -(table.tableNumber * 100),
            }],
          }
          : table
      ),
    }));
    const http = new ConvexHttpClient(server.url);
    for (
      const [channel, body] of [
        ["c", LONG],
        ["c", "apple apple pie"],
        ["c", "banana bread"],
        ["other", "apple tart"],
        ["u", "Grüße aus Köln"],
      ]
    ) {
      await http.mutation(api.search.send, { channel, body });
    }
    await fn(server, http);
  } finally {
    await server.close();
  }
}

Deno.test("search: tokenizer and query terms", () => {
  assertEquals(tokenize("Hello, World! it's 2024 — Grüße"), ["hello", "world", "it", "s", "2024", "grüße"]);
  assertEquals(searchTerms("a b a"), [{ text: "a", prefix: false }, { text: "b", prefix: false }, {
    text: "a",
    prefix: true,
  }]);
  assertEquals(searchTerms(Array.from({ length: 20 }, (_, i) => `w${i}`).join(" ")).length, 16);
  assertEquals(searchTerms("  ...  "), []);
});

Deno.test("search: schema search indexes are parsed and checked", () => {
  const schema = (searchIndexes: unknown) =>
    JSON.stringify({
      tables: [{
        tableName: "messages",
        indexes: [],
        searchIndexes,
        documentType: {
          type: "object",
          value: {
            body: { fieldType: { type: "string" }, optional: false },
            channel: { fieldType: { type: "string" }, optional: false },
          },
        },
      }],
      schemaValidation: true,
    });
  const parsed = parseSchema(schema([{ indexDescriptor: "s", searchField: "body", filterFields: ["channel"] }]));
  assertEquals(parsed.tables[0].searchIndexes, [{
    name: "messages.s",
    searchField: "body",
    filterFields: ["channel"],
  }]);
  const fails = (searchIndexes: unknown, pattern: RegExp) => {
    try {
      parseSchema(schema(searchIndexes));
    } catch (error) {
      assert(pattern.test((error as Error).message), `expected ${pattern}, got ${(error as Error).message}`);
      return;
    }
    throw new Error(`expected a failure matching ${pattern}`);
  };
  fails([{ indexDescriptor: "s", searchField: "nope", filterFields: [] }], /messages\.s is on the field "nope"/);
  fails([{ indexDescriptor: "s", searchField: "body", filterFields: ["gone"] }], /messages\.s is on the field "gone"/);
  fails([{ indexDescriptor: "s", searchField: 3, filterFields: [] }], /searchField must be a field name/);
  fails([{ indexDescriptor: "s", searchField: "body", filterFields: ["_id"] }], /system field/);
});

Deno.test({
  name: "search: relevance order, prefix on the last term, eq filters, no match, take, first, filter, paginate",
  async fn() {
    await withSearchServer(async (_server, http) => {
      // Twice in a short body beats once in a short body beats once in a long body.
      assertEquals(await http.query(api.search.find, { text: "apple" }), ["apple apple pie", "apple tart", LONG]);
      assertEquals(await http.query(api.search.find, { text: "apple", channel: "c" }), ["apple apple pie", LONG]);
      assertEquals(await http.query(api.search.find, { text: "apple", channel: "nobody" }), []);
      // The last term matches as a prefix; earlier terms only as whole words.
      assertEquals(await http.query(api.search.find, { text: "fru" }), [LONG]);
      assertEquals(await http.query(api.search.find, { text: "fru zzz" }), []);
      assertEquals(await http.query(api.search.find, { text: "BREAD ban" }), ["banana bread"]);
      assertEquals(await http.query(api.search.find, { text: "köln" }), ["Grüße aus Köln"]);
      assertEquals(await http.query(api.search.find, { text: "kiwi" }), []);
      assertEquals(await http.query(api.search.find, { text: "" }), []);
      assertEquals(await http.query(api.search.take2, { text: "apple" }), ["apple apple pie", "apple tart"]);
      assertEquals(await http.query(api.search.first, { text: "apple" }), "apple apple pie");
      assertEquals(await http.query(api.search.first, { text: "kiwi" }), null);
      assertEquals(await http.query(api.search.filtered, { text: "apple" }), ["apple tart"]);
      const first = await http.query(api.search.page, { text: "apple", cursor: null });
      assertEquals([first.page, first.isDone], [["apple apple pie", "apple tart"], false]);
      const second = await http.query(api.search.page, { text: "apple", cursor: first.cursor });
      assertEquals([second.page, second.isDone], [[LONG], true]);
      // A last page that is exactly full is done: the ranked results are all known.
      const full = await http.query(api.search.page, { text: "apple", channel: "c", cursor: null });
      assertEquals([full.page, full.isDone], [["apple apple pie", LONG], true]);
      // A mutation sees its own writes in a search.
      assertEquals(await http.mutation(api.search.insertThenFind, { text: "stripes" }), ["zebra stripes"]);
      let message = "";
      try {
        await http.query(api.search.unknownIndex, {});
      } catch (error) {
        message = (error as Error).message;
      }
      assert(message.includes("Search index messages.nope not found"), message);
    });
  },
});

Deno.test({
  name: "search: a subscription to a search query updates when a matching document is inserted",
  async fn() {
    await withSearchServer(async (server, http) => {
      const client = new ConvexClient(server.url);
      try {
        const updates: string[][] = [];
        const waiters: { predicate: (value: string[]) => boolean; resolve: (value: string[]) => void }[] = [];
        const next = (predicate: (value: string[]) => boolean) =>
          new Promise<string[]>((resolve, reject) => {
            const found = updates.find(predicate);
            if (found) return resolve(found);
            const timer = setTimeout(() => reject(new Error("no matching update within 10 s")), 10_000);
            waiters.push({ predicate, resolve: (value) => (clearTimeout(timer), resolve(value)) });
          });
        const unsubscribe = client.onUpdate(api.search.find, { text: "banana", channel: "c" }, (value: string[]) => {
          updates.push(value);
          for (const waiter of waiters) if (waiter.predicate(value)) waiter.resolve(value);
        });
        assertEquals(await next(() => true), ["banana bread"]);
        await http.mutation(api.search.send, { channel: "c", body: "banana split banana" });
        await http.mutation(api.search.send, { channel: "other", body: "banana" });
        assertEquals(await next((value) => value.length === 2), ["banana split banana", "banana bread"]);
        unsubscribe();
      } finally {
        await client.close();
      }
    });
  },
});

Deno.test({
  name: "search: a subscribed search re-runs after a matching insert, not after an unrelated one",
  async fn() {
    await withSearchServer(async (server, http) => {
      const client = new ConvexClient(server.url);
      const log = server.backend.executionLog;
      const runsOfFind = (since: number) => log.after(since).filter((entry) => entry.exportName === "find").length;
      try {
        let latest: string[] = [];
        const unsubscribe = client.onUpdate(api.search.find, { text: "banana", channel: "c" }, (value: string[]) => {
          latest = value;
        });
        await waitFor("the first result", () => Promise.resolve(latest), (value) => value.length === 1);
        const cursor = log.headCursor;
        // Unrelated: same table and channel without the word, and the word in another channel (outside the filter).
        await http.mutation(api.search.send, { channel: "c", body: "kiwi smoothie" });
        await http.mutation(api.search.send, { channel: "c", body: "an apple a day" });
        await http.mutation(api.search.send, { channel: "other", body: "banana split" });
        await http.mutation(api.search.send, { channel: "c", body: "banana boat" });
        await waitFor("the matching insert", () => Promise.resolve(latest), (value) => value.length === 2);
        assertEquals(latest, ["banana bread", "banana boat"]); // equal scores: creation order
        assertEquals(runsOfFind(cursor), 1, "only the matching insert re-runs the search");
        // An unfiltered search of the word sees the other channel's document too.
        assertEquals(await http.query(api.search.find, { text: "banana" }), [
          "banana bread",
          "banana split",
          "banana boat",
        ]);
        unsubscribe();
      } finally {
        await client.close();
      }
    });
  },
});

Deno.test({
  name: "search: the official CLI pushes search indexes, and a search field outside the validator fails the push",
  async fn() {
    const deployment = await startTestDeployment();
    const app = await createConvexApp({ "schema.ts": SCHEMA, "search.ts": SEARCH_MODULE });
    try {
      const pushed = await runConvexCli(app, DEPLOY_ARGS, deployment);
      assertEquals(pushed.code, 0, pushed.stdout + pushed.stderr);
      const call = async (path: string, args: Record<string, JsonValue>) => {
        const result = await deployment.backend.executor.call({ path, args, identityJson: null, allowInternal: false });
        if (!result.ok) throw new Error(`${path} failed: ${result.errorMessage}`);
        return JSON.parse(result.valueJson);
      };
      await call("search:send", { channel: "c", body: "hello there" });
      await call("search:send", { channel: "d", body: "hello hello" });
      assertEquals(await call("search:find", { text: "hel" }), ["hello hello", "hello there"]);
      assertEquals(await call("search:find", { text: "hello", channel: "c" }), ["hello there"]);
      await app.write({ "schema.ts": SCHEMA.replace('searchField: "body"', 'searchField: "title"') });
      const bad = await runConvexCli(app, DEPLOY_ARGS, deployment);
      assert(bad.code !== 0, "the push should fail");
      assert(/search_body is on the field "title"/.test(bad.stdout + bad.stderr), bad.stdout + bad.stderr);
      assertEquals(await call("search:find", { text: "there" }), ["hello there"]);
    } finally {
      await app.dispose();
      await deployment.close();
    }
  },
});

Deno.test({ name: "search: stop the bundler", fn: () => stopBundler() });
