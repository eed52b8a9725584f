/**
 * The dashboard's routes under `/dashboard`: the page, its two assets, sign-in and sign-out, and the JSON API the page
 * calls (`/dashboard/api/*`), every route of which needs a live session. Requests that change something must be JSON
 * (a cross-site form cannot send that without a preflight), on top of the SameSite=Strict cookie.
 */
import { type Context, Hono } from "hono";
import { constantTimeEqual } from "../auth/mod.ts";
import { AssetCache, type DashboardAssets } from "./bundle.ts";
import { backupRoutes } from "./backups_api.ts";
import { jsonBody } from "./json_body.ts";
import * as data from "./data_api.ts";
import * as ops from "./ops_api.ts";
import { clearedSessionCookie, sessionCookie, SessionStore, sessionTokenOf } from "./session.ts";
import { badRequest, type DashboardBackend, DashboardError } from "./types.ts";
import { signInClientOf, SignInLimiter } from "./sign_in_limit.ts";
import { remoteIpOf } from "../http/mod.ts";

const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

function page(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark light">
<title>denvex dashboard</title>
<link rel="stylesheet" href="/dashboard/assets/app.css">
<link rel="icon" href="data:,">
</head>
<body>
<div id="root"><p class="boot">Loading the dashboard…</p></div>
<script type="module" src="/dashboard/assets/app.js"></script>
</body>
</html>
`;
}

/** What the dashboard needs besides the backend. */
export interface DashboardOptions {
  /** What `GET /version` answers, shown on the overview. */
  version: string;
  /** When the server started (uptime). */
  startedAtMs?: number;
}

/** Builds the `/dashboard` app; mount it with `app.route("/dashboard", dashboardApp(...))`. */
export function dashboardApp(backend: DashboardBackend, options: DashboardOptions): Hono {
  const sessions = new SessionStore();
  const assets = new AssetCache(backend.dataDir ?? null);
  // Built in the background from now on (a child process), so the bundle is ready when the first person arrives.
  assets.prepare();
  const startedAtMs = options.startedAtMs ?? Date.now();
  const signIns = new SignInLimiter();
  const app = new Hono();
  app.onError((error) => errorResponse(error));
  app.use("*", async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(name, value);
  });

  app.get("/", (c) => c.html(page(), 200, { "Cache-Control": "no-cache" }));
  app.get("/assets/app.js", async (c) => assetResponse(c, await assets.get(), "js"));
  app.get("/assets/app.css", async (c) => assetResponse(c, await assets.get(), "css"));

  app.get("/api/session", (c) => c.json({ signedIn: sessions.isValid(sessionTokenOf(c.req.header("Cookie"))) }));
  app.post("/api/login", async (c) => {
    // A client out of attempts is refused before its body is read.
    const nowMs = Date.now();
    const client = signInClientOf(remoteIpOf(c));
    if (signIns.blocked(client, nowMs)) {
      throw new DashboardError(429, "TooManySignIns", "Too many failed sign-ins; wait a minute and try again");
    }
    const body = await jsonBody(c);
    const key = typeof body.adminKey === "string" ? body.adminKey.trim() : "";
    if (!constantTimeEqual(key, backend.adminKey)) {
      signIns.recordFailure(client, nowMs);
      throw new DashboardError(403, "BadAdminKey", "That is not this deployment's admin key");
    }
    const token = sessions.create();
    const https = new URL(c.req.url).protocol === "https:" || c.req.header("X-Forwarded-Proto") === "https";
    c.header("Set-Cookie", sessionCookie(token, undefined, https));
    return c.json({ signedIn: true });
  });
  app.post("/api/logout", async (c) => {
    await jsonBody(c);
    sessions.remove(sessionTokenOf(c.req.header("Cookie")));
    c.header("Set-Cookie", clearedSessionCookie());
    return c.json({ signedIn: false });
  });

  // Everything below needs a session.
  app.use("/api/*", async (c, next) => {
    if (!sessions.isValid(sessionTokenOf(c.req.header("Cookie")))) {
      throw new DashboardError(401, "NotSignedIn", "Sign in with the admin key first");
    }
    await next();
  });
  const counts = new data.TableCounts(backend.database);
  dataRoutes(app, backend, counts);
  opsRoutes(app, backend, counts, options.version, startedAtMs);
  backupRoutes(app, backend);
  return app;
}

function dataRoutes(app: Hono, backend: DashboardBackend, counts: data.TableCounts): void {
  const database = backend.database;
  const mounted = () => backend.deployments.active?.components.keys() ?? [];
  app.get("/api/tables", async (c) => c.json(await data.listTables(database, counts, mounted())));
  app.get("/api/documents", async (c) => {
    const q = (name: string) => c.req.query(name) ?? null;
    return c.json(
      await data.documentPage(database, {
        componentPath: q("component") ?? "",
        table: q("table") ?? "",
        index: q("index") ?? "by_creation_time",
        order: q("order") === "asc" ? "asc" : "desc",
        cursor: q("cursor"),
        limit: Number(q("limit") ?? "50"),
        filterField: q("filterField"),
        filterValue: q("filterValue"),
      }),
    );
  });
  app.get(
    "/api/document",
    async (c) => c.json(await data.getDocument(database, c.req.query("component") ?? "", c.req.query("id") ?? "")),
  );
  app.post("/api/documents/insert", async (c) => {
    const body = await jsonBody(c);
    const id = await data.insertDocument(database, componentOf(body), ops.stringField(body, "table"), textOf(body));
    return c.json({ id });
  });
  app.post("/api/documents/replace", async (c) => {
    const body = await jsonBody(c);
    await data.replaceDocument(database, componentOf(body), ops.stringField(body, "id"), textOf(body));
    return c.json({ ok: true });
  });
  app.post("/api/documents/delete", async (c) => {
    const body = await jsonBody(c);
    if (!Array.isArray(body.ids) || !body.ids.every((id) => typeof id === "string")) {
      throw badRequest("ids must be a list of document IDs");
    }
    return c.json({ deleted: await data.deleteDocuments(database, componentOf(body), body.ids as string[]) });
  });
  app.post("/api/tables/clear", async (c) => {
    const body = await jsonBody(c);
    return c.json(await data.clearTable(database, componentOf(body), ops.stringField(body, "table")));
  });
  app.get("/api/changes", async (c) => c.json(await ops.waitForCommit(backend, c.req.query("ts"), c.req.raw.signal)));
}

function opsRoutes(
  app: Hono,
  backend: DashboardBackend,
  counts: data.TableCounts,
  version: string,
  startedAtMs: number,
): void {
  app.get("/api/overview", async (c) => c.json(await ops.overview(backend, counts, version, startedAtMs)));
  app.get("/api/functions", (c) => c.json(ops.listFunctions(backend)));
  app.post("/api/run", async (c) => c.json(await ops.runFunction(backend, await jsonBody(c))));
  app.get("/api/logs", async (c) => c.json(await ops.tailLogs(backend, c.req.query("cursor"), c.req.raw.signal)));
  app.get("/api/schedules", async (c) => c.json(await ops.listSchedules(backend)));
  app.post("/api/schedules/cancel", async (c) => c.json(await ops.cancelJob(backend, await jsonBody(c))));
  app.get("/api/files", async (c) => c.json(await ops.listFiles(backend)));
  app.post("/api/files/upload_url", async (c) => {
    await jsonBody(c);
    // Relative, so the browser uploads to the origin it loaded the page from.
    const url = new URL(await backend.storage.generateUploadUrl());
    return c.json({ uploadUrl: url.pathname + url.search });
  });
  app.post("/api/files/delete", async (c) => {
    const body = await jsonBody(c);
    const deleted = await backend.storage.delete(ops.stringField(body, "storageId"), componentOf(body));
    if (!deleted) throw new DashboardError(404, "FileNotFound", "That file does not exist (any more)");
    return c.json({ deleted });
  });
  app.get("/api/env", (c) => c.json(ops.listEnvironment(backend)));
  app.post("/api/env", async (c) => c.json(await ops.updateEnvironment(backend, await jsonBody(c))));
  app.get("/api/schema", (c) => c.json(ops.schemaOf(backend)));
}

function componentOf(body: Record<string, unknown>): string {
  return typeof body.componentPath === "string" ? body.componentPath : "";
}

function textOf(body: Record<string, unknown>): string {
  if (typeof body.document !== "string") throw badRequest("`document` must be the document's Convex JSON text");
  return body.document;
}

function assetResponse(c: Context, assets: DashboardAssets, kind: "js" | "css"): Response {
  const headers: Record<string, string> = {
    "Content-Type": kind === "js" ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8",
    "Cache-Control": "no-cache",
    ETag: assets.etag,
    Vary: "Accept-Encoding",
    "Server-Timing": `bundle;dur=${assets.buildMs.toFixed(1)}`,
  };
  if (c.req.header("If-None-Match") === assets.etag) return new Response(null, { status: 304, headers });
  const gzip = /\bgzip\b/.test(c.req.header("Accept-Encoding") ?? "");
  const body = kind === "js" ? (gzip ? assets.jsGzip : assets.js) : (gzip ? assets.cssGzip : assets.css);
  if (gzip) headers["Content-Encoding"] = "gzip";
  return new Response(body as Uint8Array<ArrayBuffer>, { headers });
}

function errorResponse(error: unknown): Response {
  if (error instanceof DashboardError) {
    return Response.json({ code: error.code, message: error.message }, { status: error.status });
  }
  // Not the operator's mistake: the message still helps, and the dashboard is admin-only.
  const message = error instanceof Error ? error.message : String(error);
  console.error("denvex: dashboard request failed:", error);
  return Response.json({ code: "InternalError", message }, { status: 500 });
}
