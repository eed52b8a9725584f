/**
 * File storage inside components (issue 11): each component instance has its own `_storage`, so its files get IDs of
 * its own table. First the storage service on a database with a mounted component (namespaces of IDs, scoped reads
 * and deletes, upload tokens that carry the component path, the orphan sweep over every namespace); then an app with a
 * local component deployed with the official CLI and driven with `ConvexHttpClient`: the component's mutations and
 * actions store, read, serve by URL, upload through upload URLs and delete files, and neither side can reach the
 * other's files through `ctx.storage`.
 */
import { join } from "node:path";
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals, assertNotEquals, assertRejects } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, type ServerProcess, spawnServer } from "./helpers/convex_app.ts";
import { serveStorageCall, StorageService, UploadTokens } from "../src/storage/mod.ts";
import { openStorage } from "../src/server/storage.ts";
import { decodeDocumentId } from "../src/values/mod.ts";
import { SYSTEM_TABLE_NUMBERS } from "../src/database/mod.ts";

// deno-lint-ignore no-explicit-any
const api = anyApi as any;
const THREE_HOURS_MS = 3 * 60 * 60 * 1000;
const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("upload tokens: the app's have no path, a component's carry its path signed with the expiry", async () => {
  const tokens = new UploadTokens("denvex-test|key");
  assertEquals(await tokens.check(await tokens.issue()), { ok: true, componentPath: "" });
  const nested = await tokens.issue("pool/inner é");
  assertEquals(await tokens.check(nested), { ok: true, componentPath: "pool/inner é" });
  // Another path under the same signature is refused.
  const [payload, signature] = nested.split(".");
  const other = bytes("app").toBase64({ alphabet: "base64url", omitPadding: true });
  const forged = `${payload.slice(0, payload.indexOf("~"))}~${other}.${signature}`;
  assertEquals(await tokens.check(forged), { ok: false, problem: "invalid upload token" });
  assertEquals(await tokens.check("123~!!.abc"), { ok: false, problem: "malformed upload token" });
  const expired = await tokens.issue("pool", Date.now() - THREE_HOURS_MS);
  assertEquals(await tokens.check(expired), { ok: false, problem: "the upload URL has expired" });
});

Deno.test("storage service: per-namespace IDs, scoped reads and deletes, the sweep covers every namespace", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-component-storage-" });
  const database = await openStorage({ kind: "sqlite", path: join(dataDir, "denvex.sqlite3") });
  try {
    await database.mountComponent("vault");
    const storage = await StorageService.open({
      database,
      dataDir,
      adminKey: "denvex-test|x",
      cloudUrl: () => "http://127.0.0.1:1",
    });
    const vaultTable = database.catalogView.forComponent("vault").tableByName("_storage")!.tableNumber;
    const appFile = await storage.store(bytes("app"), "text/plain", 1024);
    const vaultFile = await storage.store(bytes("vault"), "text/plain", 1024, "vault");
    assertEquals(decodeDocumentId(appFile)?.tableNumber, SYSTEM_TABLE_NUMBERS._storage);
    assertEquals(decodeDocumentId(vaultFile)?.tableNumber, vaultTable);
    assertEquals(storage.namespaceOf(vaultFile), "vault");
    assertEquals(storage.namespaceOf(appFile), "");
    assert(storage.isStorageId(vaultFile) && !storage.isStorageId("nope"));

    // Unscoped (serving by URL): any namespace. Scoped (ctx.storage): only the caller's.
    assertEquals((await storage.entry(vaultFile))?.sizeBytes, 5);
    assertEquals((await storage.entry(vaultFile, "vault"))?.sizeBytes, 5);
    assertEquals(await storage.entry(vaultFile, ""), null);
    assertEquals(await storage.entry(appFile, "vault"), null);
    assertEquals(await storage.delete(vaultFile, ""), false, "the app cannot delete the component's file");
    assertEquals(await storage.delete(appFile, "vault"), false, "nor the component the app's");
    const asApp = (op: string, storageId: string) => serveStorageCall(storage, op, JSON.stringify({ storageId }), "");
    assertEquals(await asApp("1.0/storageGetUrl", vaultFile), "null");
    assertEquals(await asApp("storage/getBlob", vaultFile), "null");
    const asVault = (op: string, storageId: string) =>
      serveStorageCall(storage, op, JSON.stringify({ storageId }), "vault");
    assertEquals(
      JSON.parse(await asVault("1.0/storageGetUrl", vaultFile)),
      `http://127.0.0.1:1/api/storage/${vaultFile}`,
    );
    assertEquals(JSON.parse(await asVault("1.0/storageGetMetadata", appFile)), null);

    // An upload URL generated in the component stores into it.
    const url = new URL(JSON.parse(await serveStorageCall(storage, "1.0/storageGenerateUploadUrl", "{}", "vault")));
    assertEquals(await storage.checkUploadToken(url.searchParams.get("token")!), { ok: true, componentPath: "vault" });

    // Orphans of both namespaces are swept, files with documents of both are kept.
    const appOrphan = await storage.writeBlob(bytes("orphan"), 1024);
    const vaultOrphan = await storage.writeBlob(bytes("orphan"), 1024, "vault");
    assertEquals(decodeDocumentId(vaultOrphan.storageId)?.tableNumber, vaultTable);
    assertEquals(await storage.sweepOrphans(), 0, "young blobs are never swept");
    assertEquals(await storage.sweepOrphans(Date.now() + THREE_HOURS_MS), 2);
    assertEquals(await storage.blobs.size(appOrphan.storageId), null);
    assertEquals(await storage.blobs.size(vaultOrphan.storageId), null);
    assertEquals(await storage.blobs.size(appFile), 3);
    assertEquals(await storage.blobs.size(vaultFile), 5);

    assertEquals(await storage.delete(vaultFile, "vault"), true);
    assertEquals(await storage.blobs.size(vaultFile), null);
    assertEquals(await storage.entry(vaultFile), null);
    // A component that was never mounted has no storage.
    let refused = false;
    await storage.generateUploadUrl("nowhere").catch(() => (refused = true));
    assert(refused, "an upload URL for an unmounted component is refused");
  } finally {
    await database.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

// ---- end to end ----

/** The component's storage functions, mirrored by the app's own (`app*`) to check isolation both ways. */
const VAULT_LIB = `
import { action, mutation, query } from "./_generated/server";
import { v } from "convex/values";
const file = { id: v.string() };
export const store = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => await ctx.storage.store(new Blob([text], { type: "text/plain" })),
});
export const storeInAction = action({
  args: { text: v.string() },
  handler: async (ctx, { text }) => await ctx.storage.store(new Blob([text], { type: "text/markdown" })),
});
export const get = mutation({
  args: file,
  handler: async (ctx, { id }) => {
    const blob = await ctx.storage.get(id as any);
    return blob === null ? null : { text: await blob.text(), type: blob.type };
  },
});
export const getInAction = action({
  args: file,
  handler: async (ctx, { id }) => {
    const blob = await ctx.storage.get(id as any);
    return blob === null ? null : { text: await blob.text(), type: blob.type, url: await ctx.storage.getUrl(id as any) };
  },
});
export const info = query({
  args: file,
  handler: async (ctx, { id }) => ({
    url: await ctx.storage.getUrl(id as any),
    meta: await ctx.storage.getMetadata(id as any),
    doc: await ctx.db.system.get(id as any),
  }),
});
export const count = query({ args: {}, handler: async (ctx) => (await ctx.db.system.query("_storage").collect()).length });
export const uploadUrl = mutation({ args: {}, handler: async (ctx) => await ctx.storage.generateUploadUrl() });
export const uploadUrlInAction = action({ args: {}, handler: async (ctx) => await ctx.storage.generateUploadUrl() });
export const remove = mutation({ args: file, handler: async (ctx, { id }) => await ctx.storage.delete(id as any) });
export const removeInAction = action({ args: file, handler: async (ctx, { id }) => await ctx.storage.delete(id as any) });
`;

const APP: Record<string, string> = {
  "convex.config.ts": `
import { defineApp } from "convex/server";
import vault from "./vault/convex.config";
const app = defineApp();
app.use(vault);
export default app;
`,
  "vault/convex.config.ts": `
import { defineComponent } from "convex/server";
export default defineComponent("vault");
`,
  "vault/lib.ts": VAULT_LIB,
  // The app's own copy of the same functions, over the app's storage.
  "files.ts": VAULT_LIB,
  "main.ts": `
import { action, mutation, query } from "./_generated/server";
import { components } from "./_generated/api";
import { v } from "convex/values";
const lib = components.vault.lib;
export const store = mutation({ args: { text: v.string() }, handler: (ctx, args) => ctx.runMutation(lib.store, args) });
export const storeInAction = action({ args: { text: v.string() }, handler: (ctx, args) => ctx.runAction(lib.storeInAction, args) });
export const get = mutation({ args: { id: v.string() }, handler: (ctx, args) => ctx.runMutation(lib.get, args) });
export const getInAction = action({ args: { id: v.string() }, handler: (ctx, args) => ctx.runAction(lib.getInAction, args) });
export const info = query({ args: { id: v.string() }, handler: (ctx, args) => ctx.runQuery(lib.info, args) });
export const count = query({ args: {}, handler: (ctx) => ctx.runQuery(lib.count, {}) });
export const uploadUrl = mutation({ args: {}, handler: (ctx) => ctx.runMutation(lib.uploadUrl, {}) });
export const uploadUrlInAction = action({ args: {}, handler: (ctx) => ctx.runAction(lib.uploadUrlInAction, {}) });
export const remove = mutation({ args: { id: v.string() }, handler: (ctx, args) => ctx.runMutation(lib.remove, args) });
export const removeInAction = action({ args: { id: v.string() }, handler: (ctx, args) => ctx.runAction(lib.removeInAction, args) });
export const storeBoth = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => ({
    app: await ctx.storage.store(new Blob(["app: " + text])),
    vault: await ctx.runMutation(lib.store, { text }),
  }),
});
`,
};

interface FileInfo {
  url: string | null;
  meta: { storageId: string; size: number; contentType: string | null } | null;
  doc: { _id: string; size: number } | null;
}

Deno.test({
  name: "components end to end: a component's ctx.storage works on its own files, isolated from the app's",
  async fn(t) {
    const server: ServerProcess = await spawnServer();
    const app = await createConvexApp(APP);
    const client = new ConvexHttpClient(server.url);
    const download = async (url: string) => {
      const response = await fetch(url);
      return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
    };
    const upload = async (url: string, text: string) => {
      assert(url.startsWith(`${server.url}/api/storage/upload?token=`), url);
      const response = await fetch(url, { method: "POST", body: text, headers: { "Content-Type": "text/csv" } });
      assertEquals(response.status, 200);
      return ((await response.json()) as { storageId: string }).storageId;
    };
    try {
      const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
      assertEquals(deployed.code, 0, `deploy failed:\n${deployed.stdout}\n${deployed.stderr}`);
      const appFiles = await client.mutation(api.files.store, { text: "the app's" }) as string;
      let stored = "";

      await t.step("a component mutation stores a file in its own _storage, read back and served by URL", async () => {
        stored = await client.mutation(api.main.store, { text: "in the vault" });
        assertNotEquals(decodeDocumentId(stored)?.tableNumber, decodeDocumentId(appFiles)?.tableNumber);
        assertEquals(await client.mutation(api.main.get, { id: stored }), { text: "in the vault", type: "text/plain" });
        const info = await client.query(api.main.info, { id: stored }) as FileInfo;
        assertEquals(info.url, `${server.url}/api/storage/${stored}`);
        assertEquals(info.meta?.size, 12);
        assertEquals(info.doc?._id, stored);
        assertEquals(await download(info.url!), { status: 200, type: "text/plain", text: "in the vault" });
        assertEquals(await client.query(api.main.count, {}), 1);
      });

      await t.step("a component action stores, reads and serves its files", async () => {
        const id = await client.action(api.main.storeInAction, { text: "# from an action" }) as string;
        assertEquals(await client.action(api.main.getInAction, { id }), {
          text: "# from an action",
          type: "text/markdown",
          url: `${server.url}/api/storage/${id}`,
        });
        assertEquals(await client.mutation(api.main.get, { id }), { text: "# from an action", type: "text/markdown" });
        assertEquals(await client.action(api.main.getInAction, { id: stored }) !== null, true);
        await client.action(api.main.removeInAction, { id });
        assertEquals(await client.mutation(api.main.get, { id }), null);
        assertEquals((await download(`${server.url}/api/storage/${id}`)).status, 404);
      });

      await t.step("upload URLs generated in the component store into the component", async () => {
        const generators = [
          () => client.mutation(api.main.uploadUrl, {}) as Promise<string>,
          () => client.action(api.main.uploadUrlInAction, {}) as Promise<string>,
        ];
        for (const generate of generators) {
          const url = await generate();
          const id = await upload(url, "a,b\n1,2\n");
          const info = await client.query(api.main.info, { id }) as FileInfo;
          assertEquals(info.meta?.contentType, "text/csv");
          assertEquals(info.doc?._id, id);
          assertEquals(await client.query(api.files.info, { id }), { url: null, meta: null, doc: null });
          assertEquals((await download(info.url!)).text, "a,b\n1,2\n");
        }
        assertEquals(await client.query(api.main.count, {}), 3);
        // The app's upload URLs still store into the app.
        const appUpload = await upload(await client.mutation(api.files.uploadUrl, {}), "app upload");
        assertEquals(((await client.query(api.files.info, { id: appUpload })) as FileInfo).doc?._id, appUpload);
        assertEquals(((await client.query(api.main.info, { id: appUpload })) as FileInfo).doc, null);
      });

      await t.step("the app cannot read or delete the component's files, nor the component the app's", async () => {
        assertEquals(await client.query(api.files.info, { id: stored }), { url: null, meta: null, doc: null });
        assertEquals(await client.mutation(api.files.get, { id: stored }), null);
        assertEquals(await client.action(api.files.getInAction, { id: stored }), null);
        // Another namespace's file does not exist here: deleting it throws, as a missing file does on Convex.
        await assertRejects(() => client.mutation(api.files.remove, { id: stored }), Error, "not found");
        await assertRejects(() => client.action(api.files.removeInAction, { id: stored }), Error, "not found");
        assertEquals(await client.mutation(api.main.get, { id: stored }), { text: "in the vault", type: "text/plain" });

        assertEquals(await client.query(api.main.info, { id: appFiles }), { url: null, meta: null, doc: null });
        assertEquals(await client.mutation(api.main.get, { id: appFiles }), null);
        assertEquals(await client.action(api.main.getInAction, { id: appFiles }), null);
        await assertRejects(() => client.mutation(api.main.remove, { id: appFiles }), Error, "not found");
        await assertRejects(() => client.action(api.main.removeInAction, { id: appFiles }), Error, "not found");
        assertEquals(await client.mutation(api.files.get, { id: appFiles }), { text: "the app's", type: "text/plain" });
      });

      await t.step("one mutation stores in both namespaces; each file is its namespace's", async () => {
        const both = await client.mutation(api.main.storeBoth, { text: "twice" }) as { app: string; vault: string };
        assertEquals(decodeDocumentId(both.app)?.tableNumber, decodeDocumentId(appFiles)?.tableNumber);
        assertEquals(decodeDocumentId(both.vault)?.tableNumber, decodeDocumentId(stored)?.tableNumber);
        assertEquals((await download(`${server.url}/api/storage/${both.app}`)).text, "app: twice");
        assertEquals((await download(`${server.url}/api/storage/${both.vault}`)).text, "twice");
      });

      await t.step("a component mutation deletes its file: document and bytes gone", async () => {
        await client.mutation(api.main.remove, { id: stored });
        assertEquals(await client.query(api.main.info, { id: stored }), { url: null, meta: null, doc: null });
        assertEquals((await download(`${server.url}/api/storage/${stored}`)).status, 404);
        assertEquals((await download(`${server.url}/api/storage/${appFiles}`)).text, "the app's");
      });
    } finally {
      await app.dispose();
      await server.close();
    }
  },
});
