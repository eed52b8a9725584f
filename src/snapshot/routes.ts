/**
 * The admin routes of snapshot export and import (convex-compat.md §5.5), mounted under `/api`:
 * `POST /export/request/zip?includeStorage=`, `GET /export/zip/<ts>`, `POST /import/start_upload`,
 * `POST /import/upload_part?uploadToken=&partNumber=`, `POST /import/finish_upload`, `POST /perform_import`.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { SNAPSHOT_TOO_OLD, SyscallError, TOO_MANY_SNAPSHOT_HOLDS } from "../database/mod.ts";
import { type ImportRequest, ImportRequestError } from "./import.ts";
import type { SnapshotService } from "./service.ts";

/** Checks the caller is an admin, throwing the HTTP layer's error otherwise. */
export type AdminCheck = (c: Context) => void;

const FORMATS = ["zip", "jsonLines", "jsonArray", "csv"];
const MODES = ["requireEmpty", "append", "replace", "replaceAll"];

/** Builds the routes; see the module comment. */
export function snapshotRoutes(snapshots: SnapshotService, requireAdmin: AdminCheck): Hono {
  const app = new Hono();
  // The handlers' own errors become the 400 `{code, message}` the CLI prints; others go to the app's error handler.
  const answer = async (c: Context, run: () => Promise<Response>): Promise<Response> => {
    requireAdmin(c);
    try {
      return await run();
    } catch (error) {
      if (error instanceof ImportRequestError) return c.json({ code: error.code, message: error.message }, 400);
      // An export whose snapshot was pruned must be requested again; at the hold limit, later.
      if (error instanceof SyscallError && error.code === SNAPSHOT_TOO_OLD) {
        return c.json({ code: error.code, message: `${error.message}; request a new export` }, 400);
      }
      if (error instanceof SyscallError && error.code === TOO_MANY_SNAPSHOT_HOLDS) {
        return c.json({ code: error.code, message: error.message }, 503);
      }
      throw error;
    }
  };

  app.post("/export/request/zip", (c) =>
    answer(c, () => {
      snapshots.exports.request(c.req.query("includeStorage") === "true");
      return Promise.resolve(c.json({}));
    }));

  app.get("/export/zip/:ts", (c) =>
    answer(c, () => {
      const tsText = c.req.param("ts");
      const state = /^\d{1,20}$/.test(tsText) ? snapshots.exports.find(BigInt(tsText)) : null;
      if (state === null) throw new ImportRequestError("ExportNotFound", `No export at timestamp ${tsText}`);
      return Promise.resolve(
        new Response(snapshots.exports.zip(state), {
          headers: {
            "Content-Type": "application/zip",
            "Content-Disposition": `attachment; filename=snapshot_${state.startTs}.zip`,
          },
        }),
      );
    }));

  app.post(
    "/import/start_upload",
    (c) => answer(c, async () => c.json({ uploadToken: await snapshots.imports.startUpload() })),
  );

  app.post("/import/upload_part", (c) =>
    answer(c, async () => {
      const token = c.req.query("uploadToken") ?? "";
      const partNumber = Number(c.req.query("partNumber"));
      return c.json(await snapshots.imports.uploadPart(token, partNumber, c.req.raw.body));
    }));

  app.post("/import/finish_upload", (c) =>
    answer(c, async () => {
      const body = await c.req.json().catch(() => null) as Record<string, unknown> | null;
      const request = body?.import as Record<string, unknown> | undefined;
      if (!body || !request || typeof body.uploadToken !== "string" || !Array.isArray(body.partTokens)) {
        throw new ImportRequestError("BadRequest", "expected {import, uploadToken, partTokens}");
      }
      if (!FORMATS.includes(String(request.format)) || !MODES.includes(String(request.mode))) {
        throw new ImportRequestError("BadRequest", `unknown import format or mode`);
      }
      const componentPath = typeof request.componentPath === "string" ? request.componentPath : "";
      if (!/^([A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*)?$/.test(componentPath) || componentPath.length > 1024) {
        throw new ImportRequestError("BadRequest", "the component path must look like name or parent/child");
      }
      const importRequest = {
        tableName: typeof request.tableName === "string" ? request.tableName : null,
        mode: request.mode,
        format: request.format,
        componentPath,
      } as ImportRequest;
      return c.json({
        importId: await snapshots.imports.finishUpload(body.uploadToken, body.partTokens, importRequest),
      });
    }));

  app.post("/perform_import", (c) =>
    answer(c, async () => {
      const body = await c.req.json().catch(() => null) as { importId?: unknown } | null;
      if (typeof body?.importId !== "string") throw new ImportRequestError("BadRequest", "expected {importId}");
      await snapshots.imports.perform(body.importId);
      return c.json({});
    }));

  return app;
}
