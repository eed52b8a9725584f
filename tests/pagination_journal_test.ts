/**
 * Stable reactive pagination (convex-compat.md §2.9): a subscribed paginated query keeps its page boundary — the end
 * cursor recorded in its journal — as documents are inserted into and deleted from the page, and a client that
 * re-subscribes with the journal gets the same boundary.
 */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals } from "./helpers/assert.ts";
import { RawSocket } from "./helpers/raw_socket.ts";
import { startTestServer, SYNC_APP_FILES } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";

const FILES = {
  ...SYNC_APP_FILES,
  "pages.ts": `
    import { query, mutation } from "./_generated/server";
    import { paginationOptsValidator } from "convex/server";
    import { v } from "convex/values";
    // Pages over every message ordered by channel, so a new channel name can land inside a page.
    export const byChannel = query({
      args: { paginationOpts: paginationOptsValidator },
      handler: async (ctx, { paginationOpts }) => {
        const result = await ctx.db.query("messages").withIndex("by_channel").paginate(paginationOpts);
        return { channels: result.page.map((m) => m.channel), continueCursor: result.continueCursor, isDone: result.isDone };
      },
    });
    export const remove = mutation({
      args: { channel: v.string() },
      handler: async (ctx, { channel }) => {
        const row = await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).first();
        if (row) await ctx.db.delete(row._id);
      },
    });
  `,
};

type Page = { channels: string[]; continueCursor: string; isDone: boolean };

Deno.test({
  name: "pagination: a subscribed page keeps its boundary through inserts and deletes, and across a re-subscribe",
  async fn() {
    const server = await startTestServer({ files: FILES });
    try {
      const http = new ConvexHttpClient(server.url);
      for (const channel of ["a", "c", "e", "g", "i"]) {
        await http.mutation(anyApi.messages.send, { channel, body: channel });
      }
      const socket = new RawSocket(server.url);
      await socket.opened;
      socket.connect();
      const args = { paginationOpts: { numItems: 3, cursor: null } };
      socket.send({
        type: "ModifyQuerySet",
        baseVersion: 0,
        newVersion: 1,
        modifications: [{ type: "Add", queryId: 0, udfPath: "pages:byChannel", args: [args] }],
      });
      const updates = () =>
        socket.ofType("Transition").flatMap((t) => t.modifications as { type: string; value: Page; journal: string }[])
          .filter((m) => m.type === "QueryUpdated");
      await socket.until(() => updates().length >= 1, "first page");
      const first = updates()[0];
      assertEquals(first.value.channels, ["a", "c", "e"]);
      assert(typeof first.journal === "string" && first.journal.length > 0, "the page's end is journaled");

      // Inserted inside the page: the page grows instead of pushing "e" to the next page.
      await http.mutation(anyApi.messages.send, { channel: "b", body: "b" });
      await socket.until(() => updates().length >= 2, "page after insert");
      assertEquals(updates()[1].value.channels, ["a", "b", "c", "e"]);
      assertEquals(updates()[1].value.continueCursor, first.value.continueCursor, "same boundary");
      // Inserted after the boundary: not this page's business.
      await http.mutation(anyApi.messages.send, { channel: "f", body: "f" });
      // Deleted inside the page: the page shrinks, the boundary stays.
      await http.mutation(anyApi.pages.remove, { channel: "c" });
      await socket.until(() => updates().some((u) => u.value.channels.join() === "a,b,e"), "page after delete");
      assert(
        updates().every((u) => !u.value.channels.includes("f")),
        "a document after the page's end never joins it",
      );
      await http.mutation(anyApi.messages.send, { channel: "d", body: "d" });
      await socket.until(() => updates().some((u) => u.value.channels.join() === "a,b,d,e"), "page after 2nd insert");
      const latest = updates()[updates().length - 1];

      // A new socket re-subscribing with the journal gets the same boundary; one without it starts afresh.
      const again = new RawSocket(server.url);
      await again.opened;
      again.connect();
      again.send({
        type: "ModifyQuerySet",
        baseVersion: 0,
        newVersion: 1,
        modifications: [
          { type: "Add", queryId: 0, udfPath: "pages:byChannel", args: [args], journal: latest.journal },
          {
            type: "Add",
            queryId: 1,
            udfPath: "pages:byChannel",
            args: [{ paginationOpts: { numItems: 3, cursor: null, id: 1 } }],
          },
        ],
      });
      await again.until(() => again.ofType("Transition").length >= 1, "re-subscribed pages");
      const mods = again.ofType("Transition")[0].modifications as { queryId: number; value: Page }[];
      assertEquals(mods.find((m) => m.queryId === 0)!.value.channels, ["a", "b", "d", "e"], "journaled boundary");
      assertEquals(mods.find((m) => m.queryId === 1)!.value.channels, ["a", "b", "d"], "a fresh page of 3");
      socket.socket.close();
      again.socket.close();
    } finally {
      await server.close();
      await stopBundler();
    }
  },
});
