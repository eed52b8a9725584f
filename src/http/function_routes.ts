/**
 * The function API used by `ConvexHttpClient` and `npx convex run` (convex-compat.md §3): `POST /query`,
 * `/mutation`, `/action`, `/function`, `/query_ts`, `/query_at_ts`, `/run/<module path>/<function>`, mounted by the
 * server under `/api`. A function that ran answers 200 with `{status: "success" | "error", ...}`; everything else
 * (bad JSON, wrong shapes, bad credentials, oversized bodies) is a 4xx `{code, message}`.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import { type Context, Hono } from "hono";
import { SyscallError } from "../database/mod.ts";
import { timestampFromBase64, timestampToBase64 } from "../values/mod.ts";
import { newRequestId } from "../errors/mod.ts";
import { functionCors } from "./cors.ts";
import { handleError, handleNotFound, HttpError } from "./errors.ts";
import type { Caller } from "../auth/mod.ts";
import {
  BodyHold,
  type CallBody,
  MAX_FUNCTION_REQUEST_BYTES,
  newBodyBudget,
  parseCallBody,
  readJsonBody,
} from "./function_body.ts";
import {
  assertMayCallComponent,
  FunctionCalls,
  type ReceivedCall,
  resultResponse,
  type UdfType,
} from "./function_calls.ts";
import type { ByteBudget } from "../sync/mod.ts";
import { limitStreamedRequestBody } from "./limits.ts";
import { remoteIpOf } from "./request_metadata.ts";
import type { HttpBackend } from "./types.ts";

function parseTs(ts: unknown): bigint {
  try {
    return timestampFromBase64(ts as string);
  } catch {
    throw new HttpError(400, "BadJsonBody", "`ts` must be a base64 timestamp as returned by /api/query_ts");
  }
}

/** A 400 `SnapshotTooOld` when retention has pruned history a read at `ts` needs (src/database/retention.ts). */
function assertRetained(backend: HttpBackend, ts: bigint): void {
  try {
    backend.database.assertRetained(ts);
  } catch (error) {
    if (error instanceof SyscallError) throw new HttpError(400, error.code, error.message);
    throw error;
  }
}

/** A percent-decoded path segment; a malformed escape (`%ff`, `%zz`) is the caller's mistake, a 400. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(
      400,
      "BadPath",
      `The path segment ${JSON.stringify(segment)} is not valid percent-encoded UTF-8`,
    );
  }
}

/**
 * Builds the function API app; mount it at `/api`. `budget` holds the bytes of the call bodies being handled (shared
 * with the lean path of function_fast_path.ts, which answers the most common calls before this app sees them).
 */
export function functionRoutes(
  backend: HttpBackend,
  budget: ByteBudget = newBodyBudget(),
  calls: FunctionCalls = new FunctionCalls(backend),
): Hono {
  const app = new Hono();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", functionCors());
  app.use("*", limitStreamedRequestBody(MAX_FUNCTION_REQUEST_BYTES));
  const holds = new WeakMap<Context, BodyHold>();
  app.use("*", async (c, next) => {
    const hold = new BodyHold(budget);
    holds.set(c, hold);
    try {
      await next();
    } finally {
      hold.release();
    }
  });
  const readBody = (c: Context) => readJsonBody(c.req.raw, holds.get(c)!);
  const callerOf = (c: Context) => calls.callerOf(c.req.header("Authorization"));
  const received = (c: Context): ReceivedCall => ({ request: c.req.raw, remoteIp: remoteIpOf(c) });
  const call = (c: Context, caller: Caller, body: CallBody, expectedType?: UdfType) =>
    calls.call(received(c), caller, body, expectedType);

  for (const udfType of ["query", "mutation", "action"] as const) {
    app.post(`/${udfType}`, (c) => calls.typedCall(received(c), holds.get(c)!, udfType));
  }

  app.get("/query", async (c) => {
    let args: unknown = {};
    const argsText = c.req.query("args");
    if (argsText !== undefined) {
      try {
        args = JSON.parse(argsText);
      } catch {
        throw new HttpError(400, "BadQueryArgs", "The `args` query parameter is not valid JSON");
      }
    }
    const body = parseCallBody({ path: c.req.query("path"), args, format: c.req.query("format") }, "encoded");
    return call(c, await callerOf(c), body, "query");
  });

  app.post("/function", async (c) => {
    const caller = await callerOf(c);
    const body = parseCallBody(await readBody(c), "encoded");
    // The type is found by lookup (in the named component); queries go through the cache like `/api/query`.
    const resolved = backend.executor.resolve(body.path, caller.isAdmin, body.componentPath);
    const udfType = typeof resolved === "string" || body.path.startsWith("_system/")
      ? undefined
      : resolved.info.udfType;
    return call(c, caller, body, udfType === "query" ? "query" : undefined);
  });

  const queryTs = (c: Context) => c.json({ ts: timestampToBase64(backend.database.latestTs) }, 200);
  app.post("/query_ts", queryTs);
  app.get("/query_ts", queryTs);

  app.post("/query_at_ts", async (c) => {
    const raw = await readBody(c);
    const body = parseCallBody(raw, "encoded");
    const ts = parseTs(raw.ts);
    if (ts > backend.database.latestTs) {
      throw new HttpError(400, "TimestampInFuture", "`ts` is later than the deployment's latest timestamp");
    }
    assertRetained(backend, ts);
    const caller = await callerOf(c);
    assertMayCallComponent(caller, body);
    const requestId = newRequestId();
    const result = await backend.executor.call({
      path: body.path,
      componentPath: body.componentPath,
      args: body.args,
      expectedType: "query",
      identityJson: caller.identityJson,
      allowInternal: caller.isAdmin,
      snapshotTs: ts,
      requestId,
    });
    // Retention may have pruned below `ts` while the query ran: then its result may be wrong, never send it.
    assertRetained(backend, ts);
    return resultResponse(result, body.format, requestId);
  });

  // `/api/run/messages/list` runs `messages:list`; the default format is clean JSON (Convex's public HTTP API).
  app.post("/run/*", async (c) => {
    const segments = new URL(c.req.url).pathname.split("/").filter((s) => s.length > 0);
    const runAt = segments.indexOf("run");
    const parts = segments.slice(runAt + 1).map(decodePathSegment);
    if (parts.length < 2) {
      throw new HttpError(404, "NotFound", "Use /api/run/<module path>/<function name>, e.g. /api/run/messages/list");
    }
    const path = `${parts.slice(0, -1).join("/")}:${parts[parts.length - 1]}`;
    const raw = await readBody(c);
    const body = parseCallBody({ ...raw, path }, "clean");
    return call(c, await callerOf(c), body, undefined);
  });

  return app;
}
