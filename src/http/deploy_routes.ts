/**
 * The admin API the CLI talks to (convex-compat.md §5): the push protocol, canonical URLs, the function log stream
 * and environment variables. Mounted at `/api` on the API origin; every route requires the admin key.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { DeployError, functionLogEntries, MAX_LOG_ENTRIES, MAX_LOG_POLL_MS, PushCoordinator } from "../deploy/mod.ts";
import { ADMIN_LIMITS, PUSH_LIMITS, readAdminJsonBody, requireAdmin } from "./admin_request.ts";
import { snapshotRoutes } from "../snapshot/mod.ts";
import { handleError, HttpError } from "./errors.ts";
import type { HttpBackend } from "./types.ts";

/** What wait_for_schema waits when the client names no timeout. */
const DEFAULT_SCHEMA_WAIT_MS = 10_000;
/** Most environment variable changes in one request. */
const MAX_ENVIRONMENT_CHANGES = 1_000;

/** Maps push failures to the 400 `{code, message}` the CLI prints (other errors stay 500s). */
async function deployErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DeployError) throw new HttpError(400, error.code, error.message);
    throw error;
  }
}

/** Builds the routes; see the module comment. */
export function deployRoutes(backend: HttpBackend): Hono {
  const pushes = new PushCoordinator(backend);
  const app = new Hono();
  app.onError(handleError);
  app.route("/", snapshotRoutes(backend.snapshots, (c) => requireAdmin(c, backend.adminKey)));

  /** Checks the admin key (header, or a small body's field), then reads the body: no work for a wrong key. */
  const adminBody = (c: Context, push: boolean) =>
    readAdminJsonBody(c, backend.adminKey, push ? PUSH_LIMITS : ADMIN_LIMITS);

  app.post("/get_config_hashes", async (c) => {
    await adminBody(c, false);
    const moduleHashes = backend.deployments.moduleRecords
      // schema.js travels in appDefinition.schema, never as a function module.
      .filter((record) => record.path !== "schema.js")
      .map((record) => ({ path: record.path, hash: record.sha256, environment: record.environment }));
    return c.json({
      config: { functions: "convex/", authInfo: [] },
      moduleHashes,
      udfServerVersion: backend.deployments.active ? "1.48.0" : null,
      nodeVersion: null,
    });
  });

  app.post("/deploy2/evaluate_schema", async (c) => {
    await adminBody(c, true);
    // The CLI uses this only to warn about large index changes; without evaluations it warns about nothing.
    return c.json({ componentSchemaEvaluations: {}, newComponentDefinitions: [] });
  });

  app.post("/deploy2/evaluate_push", async (c) => {
    const body = await adminBody(c, true);
    const response = await deployErrors(() => pushes.start({ ...body, dryRun: true }));
    return c.json({ schemaChange: response.schemaChange });
  });

  app.post("/deploy2/start_push", async (c) => {
    const body = await adminBody(c, true);
    return c.json(await deployErrors(() => pushes.start(body)));
  });

  app.post("/deploy2/wait_for_schema", async (c) => {
    const body = await adminBody(c, false);
    const timeoutMs = typeof body.timeoutMs === "number" ? body.timeoutMs : DEFAULT_SCHEMA_WAIT_MS;
    return c.json(await pushes.wait(body.schemaChange, timeoutMs));
  });

  app.post("/deploy2/finish_push", async (c) => {
    const body = await adminBody(c, true);
    return c.json(await deployErrors(() => pushes.finish(body.startPush, body.dryRun === true)));
  });

  app.post("/deploy2/report_push_completed", async (c) => {
    await adminBody(c, false);
    return c.json(null);
  });

  app.get("/v1/get_canonical_urls", (c) => {
    requireAdmin(c, backend.adminKey);
    return c.json({ convexCloudUrl: backend.urls.cloudUrl, convexSiteUrl: backend.urls.siteUrl });
  });

  app.get("/stream_function_logs", async (c) => {
    requireAdmin(c, backend.adminKey);
    const cursorText = c.req.query("cursor") ?? "0";
    const cursor = Number(cursorText);
    if (!Number.isSafeInteger(cursor) || cursor < 0) {
      throw new HttpError(400, "InvalidCursor", `cursor must be a non-negative integer, not ${cursorText}`);
    }
    const log = backend.executionLog;
    // A cursor from before a restart (or from another server) is ahead of ours: start from our head.
    const from = cursor > log.headCursor ? log.headCursor : cursor;
    // The first call (cursor 0) only learns the head; it must not hang for a whole poll.
    const entries = cursor === 0 ? log.after(0) : await log.waitAfter(from, MAX_LOG_POLL_MS, c.req.raw.signal);
    const sent = entries.slice(0, MAX_LOG_ENTRIES);
    const newCursor = sent.length > 0 ? sent[sent.length - 1].cursor : Math.max(from, log.headCursor);
    return c.json({ entries: sent.flatMap(functionLogEntries), newCursor });
  });

  app.post("/update_environment_variables", async (c) => {
    const body = await adminBody(c, false);
    const changes = body.changes;
    if (!Array.isArray(changes) || changes.length > MAX_ENVIRONMENT_CHANGES) {
      throw new HttpError(
        400,
        "InvalidEnvironmentVariables",
        `changes must be a list of at most ${MAX_ENVIRONMENT_CHANGES}`,
      );
    }
    const parsed = changes.map((change) => {
      const { name, value } = (change ?? {}) as Record<string, unknown>;
      if (typeof name !== "string" || (value !== null && value !== undefined && typeof value !== "string")) {
        throw new HttpError(
          400,
          "InvalidEnvironmentVariables",
          "Each change needs a string name and a string or null value",
        );
      }
      return { name, value: (value ?? null) as string | null };
    });
    await deployErrors(() => backend.deployments.updateEnvironment(parsed));
    return c.json({});
  });

  return app;
}
