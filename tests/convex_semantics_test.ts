/**
 * Convex semantics through the whole stack: a bundled app (the real `convex@1.48.0` runtime) called with the official
 * `ConvexHttpClient`. Every database operation, index range and filter form, ordering, pagination, nested calls from
 * queries, mutations and actions, internal functions, args and returns validators, ConvexError with nested data, and
 * int64 / bytes / NaN values. Expected values are written by hand from the Convex documentation.
 */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { ConvexError } from "convex/values";
import { assert, assertEquals } from "./helpers/assert.ts";
import { ADMIN_KEY, startTestServer, SYNC_APP_FILES } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";

const api = anyApi;

const FILES: Record<string, string> = {
  "_generated/server.ts": SYNC_APP_FILES["_generated/server.ts"],
  "schema.ts": `
    import { defineSchema, defineTable } from "convex/server";
    import { v } from "convex/values";
    export default defineSchema({
      messages: defineTable({ channel: v.string(), body: v.string() }).index("by_channel", ["channel"]),
    });
  `,
  "messages.ts": SYNC_APP_FILES["messages.ts"],
  "people.ts": `
    import { query, mutation, action, internalQuery, internalMutation } from "./_generated/server";
    import { anyApi, paginationOptsValidator } from "convex/server";
    import { ConvexError, v } from "convex/values";

    const person = v.object({ name: v.string(), age: v.number(), team: v.string(), tags: v.optional(v.array(v.string())) });

    export const seed = mutation({
      args: { people: v.array(person) },
      handler: async (ctx, { people }) => {
        const ids = [];
        for (const p of people) ids.push(await ctx.db.insert("people", p));
        return ids;
      },
    });
    const names = (rows: { name: string }[]) => rows.map((r) => r.name);
    export const byAgeRange = query({
      args: { low: v.number(), high: v.number() },
      handler: async (ctx, { low, high }) =>
        names(await ctx.db.query("people").withIndex("by_age", (q) => q.gt("age", low).lte("age", high)).collect()),
    });
    export const byTeamAndAge = query({
      args: { team: v.string(), minAge: v.number() },
      handler: async (ctx, { team, minAge }) =>
        names(await ctx.db.query("people").withIndex("by_team_age", (q) => q.eq("team", team).gte("age", minAge))
          .order("desc").collect()),
    });
    export const filters = query({
      args: {},
      handler: async (ctx) => {
        const all = ctx.db.query("people");
        return {
          eq: names(await all.filter((q) => q.eq(q.field("team"), "red")).collect()),
          neq: names(await ctx.db.query("people").filter((q) => q.neq(q.field("team"), "red")).collect()),
          lt: names(await ctx.db.query("people").filter((q) => q.lt(q.field("age"), 30)).collect()),
          lte: names(await ctx.db.query("people").filter((q) => q.lte(q.field("age"), 30)).collect()),
          gt: names(await ctx.db.query("people").filter((q) => q.gt(q.field("age"), 40)).collect()),
          gte: names(await ctx.db.query("people").filter((q) => q.gte(q.field("age"), 40)).collect()),
          and: names(await ctx.db.query("people")
            .filter((q) => q.and(q.eq(q.field("team"), "blue"), q.gt(q.field("age"), 30))).collect()),
          or: names(await ctx.db.query("people")
            .filter((q) => q.or(q.eq(q.field("name"), "Ada"), q.eq(q.field("name"), "Eve"))).collect()),
          not: names(await ctx.db.query("people").filter((q) => q.not(q.eq(q.field("team"), "blue"))).collect()),
          arithmetic: names(await ctx.db.query("people")
            .filter((q) => q.eq(q.mod(q.add(q.field("age"), 1), 2), 0)).collect()),
          mulSubDivNeg: names(await ctx.db.query("people")
            .filter((q) => q.lt(q.neg(q.div(q.sub(q.mul(q.field("age"), 2), 10), 2)), -30)).collect()),
          missingField: names(await ctx.db.query("people").filter((q) => q.eq(q.field("tags"), undefined)).collect()),
          desc: names(await ctx.db.query("people").order("desc").collect()),
          first: (await ctx.db.query("people").first())?.name ?? null,
          take2: names(await ctx.db.query("people").take(2)),
          filterThenTake: names(await ctx.db.query("people").filter((q) => q.eq(q.field("team"), "blue")).take(1)),
        };
      },
    });
    export const uniqueTeam = query({
      args: { team: v.string() },
      handler: async (ctx, { team }) =>
        (await ctx.db.query("people").withIndex("by_team_age", (q) => q.eq("team", team)).unique())?.name ?? null,
    });
    export const page = query({
      args: { paginationOpts: paginationOptsValidator },
      handler: async (ctx, { paginationOpts }) => {
        const result = await ctx.db.query("people").withIndex("by_age").paginate(paginationOpts);
        return { names: names(result.page), isDone: result.isDone, continueCursor: result.continueCursor };
      },
    });
    export const edit = mutation({
      args: { id: v.id("people") },
      handler: async (ctx, { id }) => {
        await ctx.db.patch(id, { age: 99, tags: undefined });
        const patched = await ctx.db.get(id);
        await ctx.db.replace(id, { name: "Replaced", age: 1, team: "none" });
        const replaced = await ctx.db.get(id);
        const normalized = ctx.db.normalizeId("people", id);
        const wrongTable = ctx.db.normalizeId("messages", id);
        await ctx.db.delete(id);
        const deleted = await ctx.db.get(id);
        return { patchedAge: patched?.age, patchedTags: patched?.tags ?? "gone", replaced: replaced?.name,
          replacedTeam: replaced?.team, normalized: normalized === id, wrongTable, deleted };
      },
    });
    export const values = query({
      args: { n: v.int64(), bytes: v.bytes(), f: v.float64() },
      returns: v.object({ n: v.int64(), bytes: v.bytes(), f: v.float64(), isNaN: v.boolean(), len: v.number() }),
      handler: async (_ctx, { n, bytes, f }) => ({ n: n * 3n, bytes, f, isNaN: Number.isNaN(f), len: bytes.byteLength }),
    });
    export const badReturn = query({ args: {}, returns: v.string(), handler: async () => 42 as any });
    export const nestedError = query({
      args: {},
      handler: async () => {
        throw new ConvexError({ code: "DEEP", detail: { list: [1, 2n, "three"], flag: true } });
      },
    });
    export const secretCount = internalQuery({ args: {}, handler: async (ctx) => (await ctx.db.query("people").collect()).length });
    export const internalAdd = internalMutation({
      args: { name: v.string() },
      handler: async (ctx, { name }) => await ctx.db.insert("people", { name, age: 50, team: "green" }),
    });
    export const rethrow = query({
      args: {},
      handler: async (ctx) => {
        try {
          await ctx.runQuery(anyApi.people.nestedError, {});
          return null;
        } catch (error) {
          return (error as ConvexError<any>).data;
        }
      },
    });
    export const orchestrate = action({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const before = await ctx.runQuery(anyApi.people.secretCount, {});
        await ctx.runMutation(anyApi.people.internalAdd, { name });
        const after = await ctx.runQuery(anyApi.people.secretCount, {});
        const inner = await ctx.runAction(anyApi.people.echo, { text: name });
        let data: unknown = null;
        try {
          await ctx.runQuery(anyApi.people.nestedError, {});
        } catch (error) {
          data = (error as ConvexError<any>).data;
        }
        return { before, after, inner, data };
      },
    });
    export const echo = action({ args: { text: v.string() }, handler: async (_ctx, { text }) => "echo:" + text });
  `,
};

const PEOPLE = [
  { name: "Ada", age: 36, team: "blue", tags: ["math"] },
  { name: "Bob", age: 25, team: "red" },
  { name: "Cy", age: 41, team: "blue", tags: [] },
  { name: "Dee", age: 30, team: "red" },
  { name: "Eve", age: 52, team: "green" },
];

Deno.test({
  name: "semantics: the Convex API through the official client gives Convex's answers",
  async fn() {
    const server = await startTestServer({ files: FILES });
    try {
      // The test server creates `messages`; this app also needs `people` and its indexes.
      const { addIndex } = await import("./helpers/engine.ts");
      await server.backend.database.createTable("people");
      await addIndex(server.backend.database, "people", "by_age", ["age"]);
      await addIndex(server.backend.database, "people", "by_team_age", ["team", "age"]);
      const client = new ConvexHttpClient(server.url);
      const ids: string[] = await client.mutation(api.people.seed, { people: PEOPLE });
      assertEquals(ids.length, 5);

      assertEquals(await client.query(api.people.byAgeRange, { low: 30, high: 41 }), ["Ada", "Cy"]);
      assertEquals(await client.query(api.people.byTeamAndAge, { team: "blue", minAge: 0 }), ["Cy", "Ada"]);
      assertEquals(await client.query(api.people.byTeamAndAge, { team: "red", minAge: 26 }), ["Dee"]);

      assertEquals(await client.query(api.people.filters, {}), {
        eq: ["Bob", "Dee"],
        neq: ["Ada", "Cy", "Eve"],
        lt: ["Bob"],
        lte: ["Bob", "Dee"],
        gt: ["Cy", "Eve"],
        gte: ["Cy", "Eve"],
        and: ["Ada", "Cy"],
        or: ["Ada", "Eve"],
        not: ["Bob", "Dee", "Eve"],
        arithmetic: ["Bob", "Cy"],
        mulSubDivNeg: ["Ada", "Cy", "Eve"],
        missingField: ["Bob", "Dee", "Eve"],
        desc: ["Eve", "Dee", "Cy", "Bob", "Ada"],
        first: "Ada",
        take2: ["Ada", "Bob"],
        filterThenTake: ["Ada"],
      });

      assertEquals(await client.query(api.people.uniqueTeam, { team: "green" }), "Eve");
      assertEquals(await client.query(api.people.uniqueTeam, { team: "none" }), null);
      await rejects(client.query(api.people.uniqueTeam, { team: "blue" }), /unique\(\) query returned more than one/);

      // Pagination over by_age: 25 Bob, 30 Dee, 36 Ada, 41 Cy, 52 Eve.
      const first = await client.query(api.people.page, { paginationOpts: { numItems: 2, cursor: null } });
      assertEquals(first.names, ["Bob", "Dee"]);
      assertEquals(first.isDone, false);
      const second = await client.query(api.people.page, {
        paginationOpts: { numItems: 2, cursor: first.continueCursor },
      });
      assertEquals(second.names, ["Ada", "Cy"]);
      const third = await client.query(api.people.page, {
        paginationOpts: { numItems: 2, cursor: second.continueCursor },
      });
      assertEquals(third.names, ["Eve"]);
      assertEquals(third.isDone, true);
      await rejects(
        client.query(api.people.page, { paginationOpts: { numItems: 2, cursor: "not-a-cursor" } }),
        /InvalidCursor/,
      );

      assertEquals(await client.mutation(api.people.edit, { id: ids[1] }), {
        patchedAge: 99,
        patchedTags: "gone",
        replaced: "Replaced",
        replacedTeam: "none",
        normalized: true,
        wrongTable: null,
        deleted: null,
      });
      await rejects(client.mutation(api.people.edit, { id: "nope" }), /ArgumentValidationError/);
      await rejects(client.mutation(api.people.edit, { id: ids[1] }), /nonexistent document/);

      const bytes = new Uint8Array([0, 1, 2, 255]).buffer;
      const values = await client.query(api.people.values, { n: 7n, bytes, f: NaN });
      assertEquals(values.n, 21n);
      assertEquals(new Uint8Array(values.bytes), new Uint8Array([0, 1, 2, 255]));
      assert(Number.isNaN(values.f), "NaN round-trips");
      assertEquals(values.isNaN, true);
      assertEquals(values.len, 4);
      await rejects(client.query(api.people.values, { n: 7, bytes, f: 1 }), /ArgumentValidationError/);
      await rejects(client.query(api.people.badReturn, {}), /ReturnsValidationError/);

      const error = await caught(client.query(api.people.nestedError, {}));
      assert(error instanceof ConvexError, "a ConvexError reaches the client as one");
      assertEquals(error.data, { code: "DEEP", detail: { list: [1, 2n, "three"], flag: true } });
      assertEquals(await client.query(api.people.rethrow, {}), {
        code: "DEEP",
        detail: { list: [1, 2n, "three"], flag: true },
      });

      // Internal functions: hidden from public callers, callable by admin and from other functions.
      await rejects(client.query(api.people.secretCount, {}), /Could not find public function/);
      const admin = new ConvexHttpClient(server.url);
      (admin as unknown as { setAdminAuth(key: string): void }).setAdminAuth(ADMIN_KEY);
      assertEquals(await admin.query(api.people.secretCount, {}), 4);
      assertEquals(await client.action(api.people.orchestrate, { name: "Zed" }), {
        before: 4,
        after: 5,
        inner: "echo:Zed",
        data: { code: "DEEP", detail: { list: [1, 2n, "three"], flag: true } },
      });
    } finally {
      await server.close();
      await stopBundler();
    }
  },
});

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure");
}

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await caught(promise);
  const message = error instanceof Error ? error.message : String(error);
  assert(pattern.test(message), `expected ${pattern}, got: ${message}`);
}
