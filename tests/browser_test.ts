/**
 * End to end in a real browser (issue 5): the official `ConvexReactClient` in a React page (tests/browser/app.ts,
 * bundled for the browser with esbuild) in headless Debian Chromium driven by playwright-core, against an in-process
 * backend. A list rendered with `useQuery` follows a mutation that another client (`ConvexHttpClient`) makes, the
 * page's own `useMutation` write reaches the other client, and `usePaginatedQuery` loads more pages.
 *
 * Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`; .ci/run installs it). Without it the
 * test fails, it does not skip. Leaves a screenshot of the page in /tmp/denvex_browser_test.png.
 */
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestServer, SYNC_APP_FILES, type TestServer } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";

const api = anyApi;
const CHROMIUM = "/usr/bin/chromium";
/** The flags this machine needs (see the environment notes): no sandbox as root, no traffic to Google's hosts. */
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
const SCREENSHOT = "/tmp/denvex_browser_test.png";
const PAGE_ENTRY = fileURLToPath(new URL("./browser/app.ts", import.meta.url));
const NODE_MODULES = fileURLToPath(new URL("../node_modules", import.meta.url));
const WAIT_MS = 10_000;

/** The sync suite's app plus a paginated query over a channel, `messages:page`. */
const FILES: Record<string, string> = {
  ...SYNC_APP_FILES,
  "messages.ts": SYNC_APP_FILES["messages.ts"] + `
    import { paginationOptsValidator } from "convex/server";

    export const page = query({
      args: { channel: v.string(), paginationOpts: paginationOptsValidator },
      handler: async (ctx, { channel, paginationOpts }) => {
        const result = await ctx.db
          .query("messages")
          .withIndex("by_channel", (q) => q.eq("channel", channel))
          .paginate(paginationOpts);
        return { ...result, page: result.page.map((row) => row.body) };
      },
    });
  `,
};

const HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>denvex browser test</title>
  <style>
    body { font-family: sans-serif; margin: 2rem; color: #222; }
    section { border: 1px solid #ccc; border-radius: 6px; padding: 0.5rem 1rem; margin-bottom: 1rem; max-width: 32rem; }
    li { padding: 0.1rem 0; }
    form button { margin-left: 0.5rem; }
  </style>
</head>
<body>
  <div id="root"></div>
  <script type="module" src="/app.js"></script>
</body>
</html>
`;

/** Bundles the page for the browser, with React and convex/react from the project's node_modules. */
async function bundlePage(): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [PAGE_ENTRY],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    nodePaths: [NODE_MODULES],
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

/** Serves the page and its script on a random loopback port. */
function servePage(script: string): { url: string; server: Deno.HttpServer } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/") return new Response(HTML, { headers: { "content-type": "text/html; charset=utf-8" } });
    if (pathname === "/favicon.ico") return new Response(null, { status: 204 });
    if (pathname === "/app.js") {
      return new Response(script, { headers: { "content-type": "text/javascript; charset=utf-8" } });
    }
    return new Response("not found", { status: 404 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

async function launchChromium(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `Chromium is not installed (${CHROMIUM} is missing): run \`apt-get update && apt-get install -y chromium\` ` +
        "(.ci/run does this in CI). The browser test needs Debian's Chromium; it does not download one.",
    );
  }
  return await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** What the page logged, for failure messages. */
class PageLog {
  readonly lines: string[] = [];
  constructor(page: Page) {
    page.on("console", (message) => this.lines.push(`console.${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => this.lines.push(`pageerror: ${error.message}`));
    page.on("requestfailed", (request) => this.lines.push(`requestfailed: ${request.url()}`));
  }
  toString(): string {
    return this.lines.length === 0 ? "(the page logged nothing)" : this.lines.join("\n");
  }
}

/** Waits until the texts of `selector`'s elements equal `expected`. */
async function waitForTexts(page: Page, log: PageLog, selector: string, expected: string[]): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  let seen: string[] = [];
  while (Date.now() < deadline) {
    seen = await page.locator(selector).allTextContents();
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `timed out after ${WAIT_MS} ms waiting for ${selector} to show ${JSON.stringify(expected)}; ` +
      `it shows ${JSON.stringify(seen)}\npage log:\n${log}`,
  );
}

/** Waits until `fn` returns true. */
async function waitUntil(fn: () => Promise<boolean>, what: string, log: PageLog): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}\npage log:\n${log}`);
}

Deno.test({
  name: "browser: ConvexReactClient in headless Chromium follows other clients and paginates",
  async fn(t) {
    let server: TestServer | null = null;
    let pageServer: Deno.HttpServer | null = null;
    let browser: Browser | null = null;
    try {
      browser = await launchChromium();
      server = await startTestServer({ files: FILES });
      const other = new ConvexHttpClient(server.url);
      for (const body of ["hello", "world"]) await other.mutation(api.messages.send, { channel: "general", body });
      const archive = Array.from({ length: 7 }, (_, i) => `item ${i + 1}`);
      for (const body of archive) await other.mutation(api.messages.send, { channel: "archive", body });

      const served = servePage(await bundlePage());
      pageServer = served.server;
      const page = await browser.newPage({ viewport: { width: 800, height: 700 } });
      const log = new PageLog(page);
      const query = new URLSearchParams({ deployment: server.url, channel: "general", archive: "archive" });
      await page.goto(`${served.url}/?${query}`);

      await t.step("useQuery renders the list and follows another client's mutation", async () => {
        await waitForTexts(page, log, "#live li", ["hello", "world"]);
        await other.mutation(api.messages.send, { channel: "general", body: "from another client" });
        await waitForTexts(page, log, "#live li", ["hello", "world", "from another client"]);
      });

      await t.step("useMutation in the page reaches the other client", async () => {
        await page.fill("#send-text", "from the page");
        await page.click("#send button");
        await waitForTexts(page, log, "#live li", ["hello", "world", "from another client", "from the page"]);
        const seen = await other.query(api.messages.list, { channel: "general" });
        assertEquals(seen, ["hello", "world", "from another client", "from the page"]);
      });

      await t.step("usePaginatedQuery shows the first page and loads more", async () => {
        await waitForTexts(page, log, "#paged li", archive.slice(0, 3));
        assertEquals(await page.textContent("#paged-status"), "CanLoadMore");
        await page.click("#load-more");
        await waitForTexts(page, log, "#paged li", archive.slice(0, 6));
        await page.click("#load-more");
        await waitForTexts(page, log, "#paged li", archive);
        await waitUntil(
          async () => (await page.textContent("#paged-status")) === "Exhausted",
          "the paginated list to be exhausted",
          log,
        );
        assert(await page.isDisabled("#load-more"), "Load more must be disabled once the list is exhausted");
        // The last page has no end: a row another client appends shows up in it.
        await other.mutation(api.messages.send, { channel: "archive", body: "item 8" });
        await waitForTexts(page, log, "#paged li", [...archive, "item 8"]);
      });

      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      const errors = log.lines.filter((line) => line.startsWith("pageerror") || line.startsWith("console.error"));
      assertEquals(errors, [], "the page logged errors");
    } finally {
      await browser?.close();
      await pageServer?.shutdown();
      await server?.close();
      await stopBundler();
    }
  },
});
