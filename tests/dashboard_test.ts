/**
 * The admin dashboard (issue 15), end to end: the real server (`main.ts serve` with the start task's permissions), an
 * app deployed with the official CLI, official clients writing and watching, and the dashboard driven in headless
 * Debian Chromium through playwright-core. HTTP-level checks first (sessions, cookies, refusals, asset size), then the
 * browser walks every page and leaves a screenshot of each in /tmp/dashboard_shots/.
 *
 * Needs Chromium at /usr/bin/chromium (`apt-get install -y chromium`; .ci/run installs it); fails without it.
 */
import { Buffer } from "node:buffer";
import { type Browser, chromium, type Page } from "playwright-core";
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals, assertStringIncludes, waitFor } from "./helpers/assert.ts";
import {
  type ConvexApp,
  createConvexApp,
  DEPLOY_ARGS,
  runConvexCli,
  type ServerProcess,
  spawnServer,
} from "./helpers/convex_app.ts";
import { documentPage, MAX_PAGE_BYTES } from "../src/dashboard/data_api.ts";
import { bundleInChild, type ChildBuildCommand, childBuildCommand } from "../src/dashboard/build_child.ts";
import { bundleInWorker } from "../src/dashboard/bundle.ts";
import { MAX_SESSIONS, SESSION_COOKIE, SessionStore, sessionTokenOf } from "../src/dashboard/session.ts";
import { openStorage } from "../src/server/storage.ts";

const api = anyApi;
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SHOTS_DIR = "/tmp/dashboard_shots";
const ITEM_COUNT = 10_000;
const SEED_BATCH = 1_000;
/** Generous: the machine is shared and noisy. */
const UI_WAIT_MS = 20_000;
/** How long a background build may take on a busy machine (about 0.5 s of CPU). */
const CHILD_BUILD_WAIT_MS = 60_000;
/** What a build may add to the server's RSS: a build in the server's own process added 70–140 MB. */
const MAX_SERVER_GROWTH_BYTES = 40 * 1024 * 1024;

async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

const FILES: Record<string, string> = {
  "schema.ts": `
    import { defineSchema, defineTable } from "convex/server";
    import { v } from "convex/values";
    export default defineSchema({
      items: defineTable({
        n: v.number(),
        big: v.int64(),
        raw: v.bytes(),
        tag: v.string(),
        nested: v.object({ list: v.array(v.number()), deep: v.object({ ok: v.boolean() }) }),
        note: v.id("notes"),
      }).index("by_tag", ["tag"]),
      notes: defineTable({ body: v.string() }),
    });
  `,
  "seed.ts": `
    import { mutation } from "./_generated/server";
    import { v } from "convex/values";
    export const bulk = mutation({
      args: { from: v.number(), count: v.number(), note: v.id("notes") },
      handler: async (ctx, { from, count, note }) => {
        for (let n = from; n < from + count; n++) {
          await ctx.db.insert("items", {
            n,
            big: BigInt(n) * 1000000000000n,
            raw: new Uint8Array([n % 256, 7, 255]).buffer,
            tag: n % 2 === 0 ? "even" : "odd",
            nested: { list: [n, n + 1], deep: { ok: n % 3 === 0 } },
            note,
          });
        }
      },
    });
  `,
  "notes.ts": `
    import { mutation, query } from "./_generated/server";
    import { v } from "convex/values";
    export const add = mutation({
      args: { body: v.string() },
      handler: async (ctx, { body }) => {
        console.log("added note:", body);
        return await ctx.db.insert("notes", { body });
      },
    });
    export const get = query({
      args: { id: v.id("notes") },
      handler: async (ctx, { id }) => (await ctx.db.get(id))?.body ?? null,
    });
  `,
  "env.ts": `
    import { query } from "./_generated/server";
    export const greeting = query({ args: {}, handler: async () => process.env.GREETING ?? null });
  `,
  "jobs.ts": `
    import { internalMutation, mutation, query } from "./_generated/server";
    import { internal } from "./_generated/api";
    import { v } from "convex/values";
    export const later = mutation({
      args: { label: v.string() },
      handler: async (ctx, { label }) => await ctx.scheduler.runAfter(3600 * 1000, internal.jobs.run, { label }),
    });
    export const run = internalMutation({ args: { label: v.string() }, handler: async () => {} });
    export const state = query({
      args: { id: v.id("_scheduled_functions") },
      handler: async (ctx, { id }) => (await ctx.db.system.get(id))?.state.kind ?? null,
    });
  `,
};

interface Fixture {
  server: ServerProcess;
  app: ConvexApp;
  noteId: string;
}

/** Starts the server, deploys the app and seeds 10,000 items and one note. */
async function startFixture(): Promise<Fixture> {
  const server = await spawnServer();
  const app = await createConvexApp(FILES);
  try {
    const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
    assertEquals(deployed.code, 0, deployed.stderr);
    const client = new ConvexHttpClient(server.url);
    const noteId = await client.mutation(api.notes.add, { body: "first note" }) as string;
    for (let from = 0; from < ITEM_COUNT; from += SEED_BATCH) {
      await client.mutation(api.seed.bulk, { from, count: SEED_BATCH, note: noteId });
    }
    return { server, app, noteId };
  } catch (error) {
    await server.close();
    await app.dispose();
    throw error;
  }
}

async function launchChromium(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `Chromium is not installed (${CHROMIUM} is missing): run \`apt-get update && apt-get install -y chromium\``,
    );
  }
  return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** Signs in through the JSON API and returns the session cookie (`name=value`). */
async function signIn(url: string, adminKey: string): Promise<string> {
  const response = await fetch(`${url}/dashboard/api/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ adminKey }),
  });
  assertEquals(response.status, 200, await response.clone().text());
  await response.body?.cancel();
  const cookie = response.headers.get("set-cookie") ?? "";
  return cookie.split(";")[0];
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SHOTS_DIR}/${name}.png`, fullPage: false });
}

/** Everything the page logged, for failure messages. */
function pageLog(page: Page): string[] {
  const lines: string[] = [];
  page.on("console", (message) => lines.push(`console.${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => lines.push(`pageerror: ${error.message}`));
  page.on("requestfailed", (request) => lines.push(`requestfailed: ${request.url()}`));
  return lines;
}

Deno.test({
  name: "dashboard: sessions, refusals and assets over HTTP",
  async fn(t) {
    const server = await spawnServer();
    try {
      await t.step("a browser opening / is sent to the dashboard; curl still gets the plain answer", async () => {
        const browserLike = await fetch(`${server.url}/`, { headers: { Accept: "text/html" }, redirect: "manual" });
        await browserLike.body?.cancel();
        assertEquals(browserLike.status, 302);
        assertEquals(browserLike.headers.get("location"), "/dashboard");
        const plain = await fetch(`${server.url}/`);
        assertStringIncludes(await plain.text(), "denvex");
      });

      await t.step("nothing of the data API answers without a session", async () => {
        for (
          const path of ["tables", "documents?table=x", "functions", "logs", "env", "schedules", "files", "schema"]
        ) {
          const response = await fetch(`${server.url}/dashboard/api/${path}`);
          assertEquals(response.status, 401, path);
          assertEquals((await response.json()).code, "NotSignedIn");
        }
        const forged = await fetch(`${server.url}/dashboard/api/env`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Cookie: "denvex_dashboard=" + "ab".repeat(32) },
          body: JSON.stringify({ changes: [{ name: "HACKED", value: "1" }] }),
        });
        assertEquals(forged.status, 401);
        await forged.body?.cancel();
      });

      await t.step("a wrong key is refused and sets no cookie", async () => {
        for (const adminKey of ["wrong", server.adminKey + "x", "", server.adminKey.slice(0, -1)]) {
          const response = await fetch(`${server.url}/dashboard/api/login`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ adminKey }),
          });
          assertEquals(response.status, 403);
          assertEquals(response.headers.get("set-cookie"), null);
          assertEquals((await response.json()).code, "BadAdminKey");
        }
      });

      await t.step("the right key opens an HttpOnly, SameSite=Strict session that expires", async () => {
        const response = await fetch(`${server.url}/dashboard/api/login`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ adminKey: server.adminKey }),
        });
        assertEquals(response.status, 200);
        await response.body?.cancel();
        const cookie = response.headers.get("set-cookie") ?? "";
        assertStringIncludes(cookie, "HttpOnly");
        assertStringIncludes(cookie, "SameSite=Strict");
        assertStringIncludes(cookie, "Path=/dashboard");
        assert(/Max-Age=\d+/.test(cookie), cookie);
        assert(!cookie.includes(server.adminKey.split("|")[1]), "the cookie must not carry the admin key");
        const session = cookie.split(";")[0];
        const env = await fetch(`${server.url}/dashboard/api/env`, { headers: { Cookie: session } });
        assertEquals(env.status, 200);
        assertEquals(await env.json(), []);
        // Writes must be JSON: a cross-site form post (urlencoded) is refused even with the cookie.
        const form = await fetch(`${server.url}/dashboard/api/env`, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: session },
          body: "changes=1",
        });
        assertEquals(form.status, 400);
        await form.body?.cancel();
        const logout = await fetch(`${server.url}/dashboard/api/logout`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Cookie: session },
          body: "{}",
        });
        await logout.body?.cancel();
        const after = await fetch(`${server.url}/dashboard/api/env`, { headers: { Cookie: session } });
        assertEquals(after.status, 401, "a signed-out session is dead");
        await after.body?.cancel();
      });

      await t.step("bad input is a clear 4xx and changes nothing", async () => {
        const session = await signIn(server.url, server.adminKey);
        const post = (path: string, body: unknown) =>
          fetch(`${server.url}/dashboard/api/${path}`, {
            method: "POST",
            headers: { "Content-Type": "application/json", Cookie: session },
            body: JSON.stringify(body),
          });
        const badJson = await post("documents/insert", { table: "t", document: "{not json" });
        assertEquals(badJson.status, 400);
        assertStringIncludes((await badJson.json()).message, "not valid Convex JSON");
        const system = await post("documents/insert", { table: "_storage", document: "{}" });
        assertEquals(system.status, 400);
        await system.body?.cancel();
        const tables = await fetch(`${server.url}/dashboard/api/tables`, { headers: { Cookie: session } });
        assertEquals(await tables.json(), [], "no table was created");
        // Writes through the API: insert (creating the table), replace, delete, clear.
        const get = async (path: string) =>
          await (await fetch(`${server.url}/dashboard/api/${path}`, { headers: { Cookie: session } })).json();
        const ids: string[] = [];
        for (let n = 0; n < 3; n++) {
          const inserted = await post("documents/insert", { table: "scratch", document: JSON.stringify({ n }) });
          assertEquals(inserted.status, 200);
          ids.push((await inserted.json()).id);
        }
        const replaced = await post("documents/replace", {
          id: ids[0],
          document: '{"n": {"$integer": "BwAAAAAAAAA="}, "_id": "ignored"}',
        });
        assertEquals(replaced.status, 200, await replaced.clone().text());
        await replaced.body?.cancel();
        const one = await get(`document?id=${ids[0]}`);
        assertEquals(one.document.n, { $integer: "BwAAAAAAAAA=" }, "int64 7 stored as int64");
        assertEquals(one.document._id, ids[0], "system fields stay the server's");
        const deleted = await post("documents/delete", { ids: [ids[1]] });
        assertEquals((await deleted.json()).deleted, 1);
        const cleared = await post("tables/clear", { table: "scratch" });
        assertEquals(await cleared.json(), { deleted: 2, done: true });
        assertEquals((await get("documents?table=scratch")).documents, []);
        const badEnv = await post("env", { changes: [{ name: "1 bad name", value: "x" }] });
        assertEquals(badEnv.status, 400);
        await badEnv.body?.cancel();
      });

      await t.step("the page and its assets: no external URL, under 500 KB compressed, cached by ETag", async () => {
        const html = await (await fetch(`${server.url}/dashboard`)).text();
        assert(!/https?:\/\//.test(html), "the page loads nothing from another origin");
        const js = await fetch(`${server.url}/dashboard/assets/app.js`, { headers: { "Accept-Encoding": "gzip" } });
        assertEquals(js.status, 200);
        assertEquals(js.headers.get("content-encoding"), "gzip");
        // The wire size (fetch decompresses the body, but the header counts what was sent).
        const wireBytes = Number(js.headers.get("content-length"));
        const jsText = await js.text();
        const timing = js.headers.get("server-timing") ?? "";
        console.log(
          `  bundle built in ${/dur=([\d.]+)/.exec(timing)?.[1]} ms: ${jsText.length} B, ${wireBytes} B gzip`,
        );
        assert(wireBytes > 0 && wireBytes < 500 * 1024, `app.js is ${wireBytes} bytes gzipped`);
        const css = await fetch(`${server.url}/dashboard/assets/app.css`, { headers: { "Accept-Encoding": "gzip" } });
        assert(Number(css.headers.get("content-length")) + wireBytes < 500 * 1024, "all assets under 500 KB");
        assert(!/https?:\/\//.test(await css.text()), "the stylesheet loads nothing from another origin");
        // The bundle is cached in the data directory by source hash, so a restart serves it without bundling.
        const cached: string[] = [];
        for await (const entry of Deno.readDir(`${server.dataDir}/dashboard`)) cached.push(entry.name);
        assertEquals(cached.length, 1, cached.join(", "));
        assert(/^app-[0-9a-f]{32}\.js$/.test(cached[0]), cached[0]);
        assertEquals((await Deno.stat(`${server.dataDir}/dashboard/${cached[0]}`)).size, jsText.length);
        const etag = js.headers.get("etag")!;
        const again = await fetch(`${server.url}/dashboard/assets/app.js`, { headers: { "If-None-Match": etag } });
        assertEquals(again.status, 304);
        await again.body?.cancel();
      });
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "dashboard: every page in headless Chromium against a deployed app with 10,000 documents",
  async fn(t) {
    await Deno.mkdir(SHOTS_DIR, { recursive: true });
    const browser = await launchChromium();
    let fixture: Fixture | null = null;
    const watcher: { client: ConvexClient | null } = { client: null };
    try {
      fixture = await startFixture();
      const { server, noteId } = fixture;
      const http = new ConvexHttpClient(server.url);
      const page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
      const log = pageLog(page);
      page.setDefaultTimeout(UI_WAIT_MS);
      const fail = (what: string) => `${what}\npage log:\n${log.join("\n")}`;

      await t.step("sign in: a wrong key is refused, the right one opens the overview", async () => {
        await page.goto(`${server.url}/`);
        assert(page.url().endsWith("/dashboard"), fail(`went to ${page.url()}`));
        await page.getByLabel("Admin key").fill("denvex|not-the-key");
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("alert").filter({ hasText: "not this deployment's admin key" }).waitFor();
        await shot(page, "01-sign-in-refused");
        await page.getByLabel("Admin key").fill(server.adminKey);
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("heading", { name: "Overview" }).waitFor();
        await page.locator(".card-value").filter({ hasText: "10,001" }).waitFor();
        await shot(page, "02-overview");
      });

      await t.step("data: open the 10,000-document table and page through it", async () => {
        await page.goto(`${server.url}/dashboard#/data?component=&table=items`);
        await page.getByRole("heading", { name: "items" }).waitFor();
        await page.getByText("10,000 documents").waitFor();
        const rows = page.locator("table.grid tbody tr");
        await waitFor("50 rows", () => rows.count(), (n) => n === 50, UI_WAIT_MS);
        const firstIds: string[] = [];
        for (let pageNumber = 1; pageNumber <= 4; pageNumber++) {
          await page.locator(`[data-page="${pageNumber}"]`).waitFor();
          const id = await rows.first().getAttribute("data-id");
          assert(id !== null && !firstIds.includes(id), fail(`page ${pageNumber} repeats ${id}`));
          firstIds.push(id);
          if (pageNumber < 4) await page.getByRole("button", { name: "Next →" }).click();
        }
        await page.getByRole("button", { name: "← Previous" }).click();
        await page.locator('[data-page="3"]').waitFor();
        await waitFor(
          "page 3 again",
          () => rows.first().getAttribute("data-id"),
          (id) => id === firstIds[2],
          UI_WAIT_MS,
        );
        // int64 and bytes are shown as themselves, and the note reference is a link to its document.
        const firstRow = (await rows.first().textContent()) ?? "";
        assert(/\d000000000000n/.test(firstRow), fail(`no int64 in ${firstRow}`));
        await rows.first().locator(".v-bytes").filter({ hasText: "bytes(3)" }).waitFor();
        await rows.first().locator("a.v-id").filter({ hasText: noteId }).waitFor();
        await shot(page, "03-data-items");
        // An int64 is edited as a decimal and stays an int64.
        await rows.first().click();
        const itemDialog = page.getByRole("dialog");
        await itemDialog.getByRole("button", { name: "Edit" }).click();
        const editor = itemDialog.getByLabel("Document JSON");
        assertStringIncludes(await editor.inputValue(), '"$int64": "', fail("the editor shows int64 as a decimal"));
        const edited = (await editor.inputValue()).replace(/"\$int64": "\d+"/, '"$int64": "-5"');
        await editor.fill(edited);
        await itemDialog.getByRole("button", { name: "Save" }).click();
        await itemDialog.locator(".v-int").filter({ hasText: "-5n" }).waitFor();
        await page.keyboard.press("Escape");
        await itemDialog.waitFor({ state: "hidden" });
        // Sorted by another index (ascending: "even" before "odd"), then filtered by a field's value.
        await page.getByLabel("Index").selectOption("by_tag");
        await page.getByLabel("Order").selectOption("asc");
        await page.locator('[data-page="1"]').waitFor();
        await rows.first().getByText('"even"').waitFor();
        await page.getByLabel("Filter field").fill("n");
        await page.getByLabel("equals (Convex JSON)").fill("4243");
        await page.getByRole("button", { name: "Apply" }).click();
        await waitFor("one filtered row", () => rows.count(), (n) => n === 1, UI_WAIT_MS);
        await rows.first().getByText('"odd"').waitFor();
        await rows.first().getByText("4243", { exact: true }).waitFor();
        await shot(page, "04-data-filtered");
      });

      await t.step("data: a document view; an edit reaches another client's live query", async () => {
        watcher.client = new ConvexClient(server.url);
        const seen: (string | null)[] = [];
        watcher.client.onUpdate(api.notes.get, { id: noteId }, (value: string | null) => seen.push(value));
        await waitFor("the watcher's first result", () => Promise.resolve(seen), (s) => s.includes("first note"));
        await page.goto(`${server.url}/dashboard#/data?component=&table=notes&doc=${noteId}`);
        const dialog = page.getByRole("dialog");
        await dialog.getByText('"first note"').waitFor();
        await dialog.getByRole("button", { name: "Edit" }).click();
        await dialog.getByLabel("Document JSON").fill('{ "body": "edited in the dashboard" }');
        await dialog.getByRole("button", { name: "Save" }).click();
        await dialog.getByText('"edited in the dashboard"').waitFor();
        await waitFor(
          "the other client's live query to show the edit",
          () => Promise.resolve(seen),
          (s) => s.includes("edited in the dashboard"),
          UI_WAIT_MS,
        );
        await shot(page, "05-document-edited");
        // Another client's write shows up in the open table without a reload.
        await page.keyboard.press("Escape");
        await http.mutation(api.notes.add, { body: "written by another client" });
        await page.locator("table.grid").getByText('"written by another client"').waitFor();
      });

      await t.step("data: a document that violates the schema is refused with the server's error", async () => {
        await page.getByRole("button", { name: "+ Add document" }).click();
        const dialog = page.getByRole("dialog");
        await dialog.getByLabel("New document JSON").fill('{ "body": 42 }');
        await dialog.getByRole("button", { name: "Insert" }).click();
        const alert = dialog.getByRole("alert");
        await alert.waitFor();
        const message = await alert.textContent() ?? "";
        assert(/schema|validat|body/i.test(message), fail(`unexpected error: ${message}`));
        await shot(page, "06-insert-refused");
        await dialog.getByRole("button", { name: "Cancel" }).click();
        const notes = await fetchNoteCount(server);
        assertEquals(notes, 2, "nothing was inserted");
      });

      await t.step("functions: run a mutation with arguments; its log line appears in the live tail", async () => {
        await page.goto(`${server.url}/dashboard#/logs`);
        await page.getByRole("heading", { name: "Logs" }).waitFor();
        await page.goto(`${server.url}/dashboard#/functions?component=&path=notes%3Aadd`);
        await page.getByRole("heading", { name: "mutation notes:add" }).waitFor();
        await page.getByLabel("Arguments (Convex JSON)").fill('{ "body": "from the dashboard" }');
        await page.getByRole("button", { name: "Run mutation" }).click();
        await page.locator(".run-result.ok").waitFor();
        const resultText = await page.locator(".run-result").textContent() ?? "";
        assertStringIncludes(resultText, "from the dashboard", fail(resultText));
        await shot(page, "07-functions-run");
        await page.getByRole("link", { name: "Logs" }).click();
        await page.locator(".log-text").filter({ hasText: "from the dashboard" }).first().waitFor();
        // Live: a call made elsewhere appears without a reload.
        await http.mutation(api.notes.add, { body: "tailed live" });
        await page.locator(".log-text").filter({ hasText: "tailed live" }).waitFor();
        await page.getByLabel("Outcome").selectOption("failure");
        await page.getByText("No executions yet").waitFor();
        await page.getByLabel("Outcome").selectOption("all");
        await shot(page, "08-logs");
      });

      await t.step("files: upload one and delete it", async () => {
        await page.goto(`${server.url}/dashboard#/files`);
        await page.getByRole("heading", { name: "Files" }).waitFor();
        await page.getByLabel("Upload a file").setInputFiles({
          name: "hello.txt",
          mimeType: "text/plain",
          buffer: Buffer.from("hello from the dashboard test"),
        });
        const row = page.locator("tr[data-file]").filter({ hasText: "text/plain" });
        await row.waitFor();
        const storageId = (await row.getAttribute("data-file"))!;
        const download = await fetch(`${server.url}/api/storage/${storageId}`);
        assertEquals(await download.text(), "hello from the dashboard test");
        await shot(page, "09-files");
        await row.getByRole("button", { name: "Delete" }).click();
        await page.getByText("No files stored").waitFor();
        const gone = await fetch(`${server.url}/api/storage/${storageId}`);
        assertEquals(gone.status, 404);
        await gone.body?.cancel();
      });

      await t.step("environment: a variable set in the dashboard is what a function reads", async () => {
        assertEquals(await http.query(api.env.greeting, {}), null);
        await page.goto(`${server.url}/dashboard#/env`);
        await page.getByLabel("Name").fill("GREETING");
        await page.getByLabel("Value").fill("hello from the dashboard");
        await page.getByRole("button", { name: "Add variable" }).click();
        await page.locator('tr[data-env="GREETING"]').waitFor();
        await waitFor(
          "the function to read the variable",
          () => http.query(api.env.greeting, {}),
          (value) => value === "hello from the dashboard",
        );
        await page.locator('tr[data-env="GREETING"]').getByRole("button", { name: "Edit" }).click();
        await page.getByLabel("New value of GREETING").fill("changed");
        await page.locator('tr[data-env="GREETING"]').getByRole("button", { name: "Save" }).click();
        await waitFor("the changed value", () => http.query(api.env.greeting, {}), (value) => value === "changed");
        await shot(page, "10-environment");
      });

      await t.step("schedules: cancel a scheduled function", async () => {
        const jobId = await http.mutation(api.jobs.later, { label: "to cancel" }) as string;
        await page.goto(`${server.url}/dashboard#/schedules`);
        const row = page.locator(`tr[data-job="${jobId}"]`);
        await row.getByText("pending").waitFor();
        await shot(page, "11-schedules");
        await row.getByRole("button", { name: "Cancel" }).click();
        await row.getByText("canceled").waitFor();
        assertEquals(await http.query(api.jobs.state, { id: jobId }), "canceled");
      });

      await t.step("backups: download a snapshot ZIP of the deployment", async () => {
        await page.goto(`${server.url}/dashboard#/backups`);
        await page.getByRole("heading", { name: "Backups", exact: true }).waitFor();
        const downloading = page.waitForEvent("download");
        await page.getByRole("button", { name: "Download snapshot" }).click();
        const download = await downloading;
        assert(/^snapshot_\d+\.zip$/.test(download.suggestedFilename()), download.suggestedFilename());
        const zip = await Deno.readFile(await download.path());
        assertEquals([...zip.slice(0, 4)], [0x50, 0x4b, 0x03, 0x04], "a ZIP file");
        assert(zip.length > 100_000, `a snapshot of 10,000 documents, not ${zip.length} bytes`);
        await shot(page, "13-backups");
      });

      await t.step("schema, and a phone-sized screen", async () => {
        await page.goto(`${server.url}/dashboard#/schema`);
        await page.getByText("schema enforced").waitFor();
        await page.getByText("by_tag").first().waitFor();
        await shot(page, "12-schema");
        await page.setViewportSize({ width: 390, height: 844 });
        await page.goto(`${server.url}/dashboard#/data?component=&table=items`);
        await page.getByText("10,000 documents").waitFor();
        await shot(page, "14-phone-data");
        await page.getByRole("button", { name: "☰ Menu" }).click();
        await page.getByRole("link", { name: "Functions" }).waitFor();
        await shot(page, "15-phone-menu");
        // Keyboard: Tab reaches the menu's links.
        await page.keyboard.press("Tab");
        const focused = await page.evaluate<string>("document.activeElement?.tagName ?? ''");
        assert(["A", "BUTTON", "INPUT", "SELECT"].includes(focused), `focus went to ${focused}`);
      });

      const external = log.filter((line) => line.startsWith("requestfailed") && !line.includes(server.url));
      assertEquals(external, [], "the page requested nothing outside the server");
      await page.close();
    } finally {
      await watcher.client?.close();
      await browser.close();
      if (fixture) {
        await fixture.server.close();
        await fixture.app.dispose();
      }
    }
  },
});

/** Documents in `notes`, read through the dashboard's own documents API (a page holds them all). */
async function fetchNoteCount(server: ServerProcess): Promise<number> {
  const session = await signIn(server.url, server.adminKey);
  const response = await fetch(`${server.url}/dashboard/api/documents?table=notes&limit=500`, {
    headers: { Cookie: session },
  });
  const page = await response.json() as { documents: unknown[]; isDone: boolean };
  assert(page.isDone, "one page holds every note");
  return page.documents.length;
}

Deno.test("dashboard sessions: expire, are bounded, and a removed token is dead", () => {
  const sessions = new SessionStore(1_000);
  const token = sessions.create(0);
  assert(sessions.isValid(token, 999));
  assert(!sessions.isValid(token, 1_000), "expired at its lifetime");
  assert(!sessions.isValid(null, 0));
  assert(!sessions.isValid("not-a-token", 0));
  const tokens = Array.from({ length: MAX_SESSIONS + 10 }, () => sessions.create(5_000));
  assertEquals(sessions.size, MAX_SESSIONS);
  assert(!sessions.isValid(tokens[0], 5_000), "the oldest session made room");
  assert(sessions.isValid(tokens[tokens.length - 1], 5_000));
  sessions.remove(tokens[tokens.length - 1]);
  assert(!sessions.isValid(tokens[tokens.length - 1], 5_000));
  assertEquals(sessionTokenOf(`a=b; ${SESSION_COOKIE}=abc; c=d`), "abc");
  assertEquals(sessionTokenOf("a=b"), null);
});

Deno.test("dashboard pages: every document exactly once across pages, in both orders, with and without a filter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denvex-dashboard-pages-" });
  const database = await openStorage({ kind: "sqlite", path: `${dir}/db.sqlite3` });
  try {
    const total = 1_000;
    await database.runSystemTransaction(async (tx) => {
      for (let n = 0; n < total; n++) await tx.insert("things", { n, group: n % 7 });
    });
    for (const order of ["asc", "desc"] as const) {
      for (const filter of [null, { field: "group", value: "3" }]) {
        const seen: number[] = [];
        let cursor: string | null = null;
        for (let pages = 0; pages < 100; pages++) {
          const page = await documentPage(database, {
            componentPath: "",
            table: "things",
            index: "by_creation_time",
            order,
            cursor,
            limit: 37,
            filterField: filter?.field ?? null,
            filterValue: filter?.value ?? null,
          });
          for (const document of page.documents) seen.push((document as { n: number }).n);
          if (page.isDone) break;
          cursor = page.cursor;
        }
        const expected = Array.from({ length: total }, (_, n) => n).filter((n) => filter === null || n % 7 === 3);
        assertEquals([...seen].sort((a, b) => a - b), expected, `order ${order}, filter ${JSON.stringify(filter)}`);
        assertEquals(new Set(seen).size, seen.length, "no document twice");
      }
    }
    // A page holds at most MAX_PAGE_BYTES of documents (at least one), and paging still reaches every one.
    const bigBody = "x".repeat(600 * 1024);
    for (let batch = 0; batch < 4; batch++) {
      await database.runSystemTransaction(async (tx) => {
        for (let n = 0; n < 5; n++) await tx.insert("big", { n: batch * 5 + n, body: bigBody });
      });
    }
    const bigSeen: number[] = [];
    let bigCursor: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const page = await documentPage(database, {
        componentPath: "",
        table: "big",
        index: "by_creation_time",
        order: "asc",
        cursor: bigCursor,
        limit: 50,
        filterField: null,
        filterValue: null,
      });
      const pageBytes = page.documents.reduce<number>((sum, document) => sum + JSON.stringify(document).length, 0);
      assert(page.documents.length >= 1 && pageBytes <= MAX_PAGE_BYTES + 1024, `a page of ${pageBytes} bytes`);
      for (const document of page.documents) bigSeen.push((document as { n: number }).n);
      if (page.isDone) break;
      bigCursor = page.cursor;
    }
    assertEquals(bigSeen, Array.from({ length: 20 }, (_, n) => n));
    // Bad input is refused with a clear message and changes nothing.
    const refused = async (request: Partial<Parameters<typeof documentPage>[1]>) => {
      try {
        await documentPage(database, {
          componentPath: "",
          table: "things",
          index: "by_creation_time",
          order: "asc",
          cursor: null,
          limit: 10,
          filterField: null,
          filterValue: null,
          ...request,
        });
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error(`not refused: ${JSON.stringify(request)}`);
    };
    assertStringIncludes(await refused({ table: "nope" }), 'No table "nope"');
    assertStringIncludes(await refused({ index: "by_nothing" }), 'no index "by_nothing"');
    assertStringIncludes(await refused({ cursor: "%%%" }), "cursor is not valid");
    assertStringIncludes(await refused({ filterField: "n", filterValue: "{bad" }), "not valid Convex JSON");
  } finally {
    await database.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "dashboard bundle: built at start by a child process, before any visit, and served when the cache is unwritable",
  async fn(t) {
    await t.step("a fresh data directory has the bundle cached soon after start, with no request", async () => {
      const server = await spawnServer();
      try {
        const rssAtStartBytes = await rssBytes(server.pid);
        const cached = await waitFor(
          "the background build",
          async () => {
            const names: string[] = [];
            try {
              for await (const entry of Deno.readDir(`${server.dataDir}/dashboard`)) names.push(entry.name);
            } catch { /* not made yet */ }
            return names;
          },
          (names) => names.some((name) => /^app-[0-9a-f]{32}\.js$/.test(name)),
          CHILD_BUILD_WAIT_MS,
        );
        // esbuild's memory was the child's: a build inside the server grew it by 70–140 MB.
        const grownBytes = await rssBytes(server.pid) - rssAtStartBytes;
        assert(grownBytes < MAX_SERVER_GROWTH_BYTES, `the server grew by ${grownBytes} bytes during the build`);
        // The visit then serves it from memory, with the same bytes.
        const js = await fetch(`${server.url}/dashboard/assets/app.js`);
        const bytes = new Uint8Array(await js.arrayBuffer());
        const file = cached.find((name) => name.endsWith(".js"))!;
        assertEquals(bytes, await Deno.readFile(`${server.dataDir}/dashboard/${file}`));
      } finally {
        await server.close();
      }
    });

    await t.step("a cache folder that cannot be written still serves the dashboard (from memory)", async () => {
      const dataDir = await Deno.makeTempDir({ prefix: "denvex-dashboard-readonly-" });
      // A file where the cache folder should be: mkdir and every write under it fail (the tests run as root, so a
      // read-only mode would not stop a write).
      await Deno.writeTextFile(`${dataDir}/dashboard`, "not a folder");
      const server = await spawnServer({ dataDir });
      try {
        const js = await fetch(`${server.url}/dashboard/assets/app.js`);
        assertEquals(js.status, 200);
        assertStringIncludes(js.headers.get("content-type") ?? "", "javascript");
        assert((await js.text()).length > 10_000, "a whole bundle");
        assertEquals(await Deno.readTextFile(`${dataDir}/dashboard`), "not a folder", "left as it was");
      } finally {
        await server.close();
        await Deno.remove(dataDir, { recursive: true });
      }
    });
  },
});

Deno.test("dashboard bundle: a failing, oversized or slow child is a clear error, and the child is gone", async () => {
  const script = (code: string): ChildBuildCommand => ({
    command: Deno.execPath(),
    args: ["eval", "--no-config", code],
    env: { NO_COLOR: "1" },
  });
  const refusal = async (command: ChildBuildCommand, limits = {}) => {
    try {
      await bundleInChild(limits, command);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error("not refused");
  };
  assertStringIncludes(
    await refusal(script("console.error('cannot resolve x.tsx'); Deno.exit(3)")),
    "cannot resolve x.tsx",
  );
  assertStringIncludes(await refusal(script("Deno.exit(0)")), "bundling the dashboard failed");
  assertStringIncludes(
    await refusal(script("await Deno.stdout.write(new Uint8Array(64 * 1024)); await new Promise(() => {})"), {
      maxBytes: 1024,
    }),
    "wrote more than 1024 bytes",
  );
  assertStringIncludes(
    await refusal(script("await new Promise((resolve) => setTimeout(resolve, 60_000))"), { timeoutMs: 300 }),
    "took longer than 300 ms",
  );
  assertEquals(
    new TextDecoder().decode(await bundleInChild({}, script("await Deno.stdout.write(new Uint8Array([59]))"))),
    ";",
  );
});

Deno.test("dashboard bundle: the child exits as soon as the server that started it goes away", async () => {
  const { command, args, env } = childBuildCommand();
  const child = new Deno.Command(command, { args, env, stdin: "piped", stdout: "piped", stderr: "null" }).spawn();
  // What the server's death does to the pipe: the child reads end-of-file.
  await child.stdin.close();
  const [status, output] = await Promise.all([child.status, new Response(child.stdout).arrayBuffer()]);
  assertEquals(status.code, 1);
  assertEquals(output.byteLength, 0, "no bundle written");
});

Deno.test("dashboard bundle: the child process and the in-process worker fallback build the same bytes", async () => {
  const [fromChild, fromWorker] = [await bundleInChild(), await bundleInWorker()];
  assert(fromChild.length > 10_000, `${fromChild.length} bytes`);
  assertEquals(fromChild, fromWorker);
});
