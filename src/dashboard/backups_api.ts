/**
 * The Backups page's server side: a snapshot ZIP of the whole deployment downloaded now (the same export
 * `npx convex export` takes, streamed as it is read), and, when the server takes scheduled backups
 * (`--backup-every`), their files with a download and a "back up now".
 */
import { Hono } from "hono";
import { jsonBody } from "./json_body.ts";
import { type DashboardBackend, DashboardError } from "./types.ts";

/** Adds the routes under `/api/backups` to `app` (behind the session check the caller installed). */
export function backupRoutes(app: Hono, backend: DashboardBackend): void {
  app.get("/api/backups", async (c) => {
    const backups = backend.backups ?? null;
    const files = backups ? await backups.list() : [];
    return c.json({
      exports: backend.snapshots !== undefined,
      scheduled: backups !== null,
      dir: backups?.dir ?? null,
      files: files.reverse().map((file) => ({
        name: file.name,
        snapshotTs: file.snapshotTs.toString(),
        sizeBytes: file.sizeBytes,
      })),
    });
  });

  app.post("/api/backups/now", async (c) => {
    await jsonBody(c);
    if (!backend.backups) throw new DashboardError(404, "NoScheduledBackups", "Start the server with --backup-every");
    const file = await backend.backups.backupNow();
    return c.json({ name: file?.name ?? null });
  });

  app.get("/api/backups/file/:name", async (c) => {
    const backups = backend.backups ?? null;
    const name = c.req.param("name");
    // Only a name the listing returns (folder or bucket): never a path the caller made up.
    const opened = backups ? await backups.open(name) : null;
    if (!opened) throw new DashboardError(404, "BackupNotFound", `No backup named ${name}`);
    const file = opened.file;
    return new Response(opened.body, {
      headers: {
        "Content-Type": "application/zip",
        "Content-Length": String(file.sizeBytes),
        "Content-Disposition": `attachment; filename="${file.name}"`,
      },
    });
  });

  app.post("/api/backups/export", async (c) => {
    const body = await jsonBody(c);
    if (!backend.snapshots) throw new DashboardError(404, "NoExports", "Snapshot export is not available");
    const state = backend.snapshots.exports.request(body.includeStorage === true);
    return c.json({ ts: state.startTs.toString() });
  });

  app.get("/api/backups/export/:ts", (c) => {
    const tsText = c.req.param("ts");
    const state = /^\d{1,20}$/.test(tsText) ? backend.snapshots?.exports.find(BigInt(tsText)) ?? null : null;
    if (state === null) throw new DashboardError(404, "ExportNotFound", "That export is gone; take a new one");
    return new Response(backend.snapshots!.exports.zip(state), {
      headers: {
        "Content-Type": "application/zip",
        "Content-Disposition": `attachment; filename="snapshot_${state.startTs}.zip"`,
      },
    });
  });
}
