/**
 * Issue 13, file storage as Convex does it, on the real server deployed with the official CLI: deleting a file that
 * is not there throws, a `sha256` (Digest header, `store` option) that does not match refuses the file, upload-token
 * refusals carry Convex's codes, a Range of an empty file, and Convex's download headers.
 */
import { createHash } from "node:crypto";
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assertEquals, assertRejects } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, spawnServer } from "./helpers/convex_app.ts";
import { STORAGE_FILES_BASE } from "./helpers/storage_app.ts";
import { UploadTokens } from "../src/storage/mod.ts";

const api = anyApi;
const APP = {
  "files.ts": STORAGE_FILES_BASE + `
export const removeInAction = action({ args: { id: v.id("_storage") }, handler: async (ctx, { id }) => await ctx.storage.delete(id) });
export const storeInAction = action({
  args: { text: v.string(), sha256: v.optional(v.string()) },
  handler: async (ctx, { text, sha256 }) => await ctx.storage.store(new Blob([text]), sha256 === undefined ? undefined : { sha256 }),
});
export const storeInMutation = mutation({
  args: { text: v.string(), sha256: v.string() },
  handler: async (ctx, { text, sha256 }) => await (ctx.storage as any).store(new Blob([text]), { sha256 }),
});
`,
};

const sha256 = (text: string, encoding: "hex" | "base64") => createHash("sha256").update(text).digest(encoding);

Deno.test({
  name: "fidelity: storage deletes, sha256 checks, upload tokens, empty-file ranges and download headers as Convex",
  async fn(t) {
    const server = await spawnServer();
    const app = await createConvexApp(APP);
    const client = new ConvexHttpClient(server.url);
    const upload = async (body: string, headers: Record<string, string> = {}) => {
      const url: string = await client.mutation(api.files.uploadUrl, {});
      return await fetch(url, { method: "POST", body, headers: { "Content-Type": "text/plain", ...headers } });
    };
    const uploadId = async (body: string) => ((await (await upload(body)).json()) as { storageId: string }).storageId;
    try {
      const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
      assertEquals(deployed.code, 0, deployed.stdout + deployed.stderr);

      await t.step("deleting a file twice: the second delete throws StorageIdNotFound's message", async () => {
        const id = await uploadId("short-lived");
        await client.mutation(api.files.remove, { id });
        await assertRejects(() => client.mutation(api.files.remove, { id }), Error, `storage id ${id} not found`);
        await assertRejects(() => client.action(api.files.removeInAction, { id }), Error, `storage id ${id} not found`);
        const other = await uploadId("deleted by an action");
        await client.action(api.files.removeInAction, { id: other });
        await assertRejects(() => client.action(api.files.removeInAction, { id: other }), Error, "not found");
      });

      await t.step("an upload whose Digest does not match is refused; a matching one is kept", async () => {
        const wrong = await upload("the bytes", { Digest: `sha-256=${sha256("other bytes", "base64")}` });
        assertEquals(wrong.status, 400);
        assertEquals(await wrong.json(), {
          code: "Sha256Mismatch",
          message: `Sha256 mismatch. Expected: ${sha256("other bytes", "base64")} Actual: ${
            sha256("the bytes", "base64")
          }`,
        });
        const right = await upload("the bytes", { Digest: `sha-256=${sha256("the bytes", "base64")}` });
        assertEquals(right.status, 200);
        const malformed = await upload("the bytes", { Digest: "md5=abc" });
        assertEquals([malformed.status, (await malformed.json()).code], [400, "BadHeader"]);
      });

      await t.step("store with a sha256 that does not match throws, in an action and in a mutation", async () => {
        await assertRejects(
          () => client.action(api.files.storeInAction, { text: "abc", sha256: sha256("xyz", "hex") }),
          Error,
          "Sha256 mismatch",
        );
        await assertRejects(
          () => client.mutation(api.files.storeInMutation, { text: "abc", sha256: sha256("xyz", "base64") }),
          Error,
          "Sha256 mismatch",
        );
        const id = await client.action(api.files.storeInAction, { text: "abc", sha256: sha256("abc", "hex") });
        assertEquals((await client.query(api.files.doc, { id })).sha256, sha256("abc", "base64"));
        const fromMutation = await client.mutation(api.files.storeInMutation, {
          text: "abc",
          sha256: sha256("abc", "base64"),
        });
        assertEquals((await client.query(api.files.doc, { id: fromMutation })).size, 3);
      });

      await t.step("upload-token refusals carry Convex's codes", async () => {
        const post = (query: string) =>
          fetch(`${server.url}/api/storage/upload${query}`, { method: "POST", body: "x" });
        const invalid = { code: "StorageTokenInvalid", message: "Couldn't decode the StoreFileAuthorization token" };
        for (const query of ["", "?token=", "?token=coffee", "?token=99999999999999.AAAA"]) {
          const response = await post(query);
          assertEquals([response.status, await response.json()], [401, invalid], query);
        }
        const old = await new UploadTokens(server.adminKey).issue("", Date.now() - 2 * 60 * 60 * 1000);
        const expired = await post(`?token=${old}`);
        assertEquals([expired.status, await expired.json()], [401, {
          code: "StorageTokenExpired",
          message: "Store File Authorization expired",
        }]);
      });

      await t.step("download headers: private 30-day caching, Digest on whole files, none on ranges", async () => {
        const id = await uploadId("cache me");
        const whole = await fetch(`${server.url}/api/storage/${id}`);
        assertEquals(await whole.text(), "cache me");
        assertEquals(whole.headers.get("cache-control"), "private, max-age=2592000");
        assertEquals(whole.headers.get("digest"), `sha-256=${sha256("cache me", "base64")}`);
        assertEquals(whole.headers.get("accept-ranges"), "bytes");
        const part = await fetch(`${server.url}/api/storage/${id}`, { headers: { Range: "bytes=0-4" } });
        assertEquals([part.status, await part.text()], [206, "cache"]);
        assertEquals(part.headers.get("cache-control"), "private, max-age=2592000");
        assertEquals(part.headers.get("digest"), null);
      });

      await t.step("a Range of an empty file: 206 with no bytes and no Content-Range", async () => {
        const id = await uploadId("");
        for (const range of ["bytes=0-", "bytes=0-10", "bytes=-5"]) {
          const response = await fetch(`${server.url}/api/storage/${id}`, { headers: { Range: range } });
          assertEquals([response.status, await response.text()], [206, ""], range);
          assertEquals(response.headers.get("content-range"), null);
          assertEquals(response.headers.get("content-length"), "0");
        }
        const whole = await fetch(`${server.url}/api/storage/${id}`);
        assertEquals([whole.status, await whole.text()], [200, ""]);
      });
    } finally {
      await app.dispose();
      await server.close();
    }
  },
});
