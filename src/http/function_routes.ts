/**
 * The function API used by `ConvexHttpClient` and `npx convex run` (convex-compat.md §3): `POST /query`,
 * `/mutation`, `/action`, `/function`, `/query_ts`, `/query_at_ts`, `/run/<module path>/<function>`, mounted by the
 * server under `/api`. A function that ran answers 200 with `{status: "success" | "error", ...}`; everything else
 * (bad JSON, wrong shapes, bad credentials, oversized bodies) is a 4xx `{code, message}`.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import { type Context, Hono } from "hono";
import { AuthenticationError, type Caller } from "../auth/mod.ts";
import { SyscallError } from "../database/mod.ts";
import type { CallResult } from "../functions/mod.ts";
import { queryKeyOf, type QuerySpec } from "../subscriptions/mod.ts";
import { ByteBudget, toQueryRun } from "../sync/mod.ts";
import {
  jsonNestingExceeds,
  MAX_JSON_ARGS_NESTING,
  MAX_VALUE_NESTING,
  timestampFromBase64,
  timestampToBase64,
} from "../values/mod.ts";
import type { JsonValue } from "../values/mod.ts";
import { functionCors } from "./cors.ts";
import { handleError, handleNotFound, HttpError } from "./errors.ts";
import { parseFormat, toCleanJson, type ValueFormat } from "./function_format.ts";
import { limitStreamedRequestBody } from "./limits.ts";
import { remoteIpOf, requestMetadataOf } from "./request_metadata.ts";
import type { HttpBackend } from "./types.ts";
import { framedFunctionError, newRequestId } from "../errors/mod.ts";

/** Convex's limit on a function call's arguments, with room for the JSON around them. */
export const MAX_FUNCTION_REQUEST_BYTES = 16 * 1024 * 1024 + 64 * 1024;
/** Bodies up to this declared size are held in the in-flight budget before they arrive and read in one piece. */
const MAX_WHOLE_BODY_BYTES = 64 * 1024;
/** The longest function path accepted. */
const MAX_PATH_LENGTH = 1024;
/**
 * Bytes of call request bodies being handled at once, per deployment. A call retains a small multiple of its body
 * (text, parsed args, cache key) until it answers, so this caps what concurrent calls can pin; a body that does not
 * fit is refused with 503 while it streams in, before it is parsed.
 */
export const MAX_FUNCTION_BODY_BYTES_IN_FLIGHT = 128 * 1024 * 1024;

type UdfType = "query" | "mutation" | "action";

/** The fields of a call request body after validation. */
interface CallBody {
  path: string;
  args: JsonValue;
  format: ValueFormat;
  /** `""` for the app; a component's path (`"aggregate"`, `"parent/child"`) calls into it (admin only). */
  componentPath: string;
}

/** The request bodies being handled and the bytes each holds in the in-flight budget (given back when it answers). */
interface BodyHolds {
  budget: ByteBudget;
  held: WeakMap<Context, number>;
}

/** Takes `bytes` of the in-flight budget for this request; 503 when they do not fit. */
function holdBodyBytes(c: Context, holds: BodyHolds, bytes: number): void {
  if (!holds.budget.tryTake(bytes)) {
    throw new HttpError(
      503,
      "TooManyConcurrentRequests",
      "The server is handling too many large requests at once; try again later",
    );
  }
  holds.held.set(c, (holds.held.get(c) ?? 0) + bytes);
}

/**
 * Reads the body, holding its bytes in the in-flight budget (503 once the budget is spent). A small body with a
 * declared `Content-Length` (what every client sends for a JSON call) takes its size before it is read and is read in
 * one piece, which costs ~35 µs less CPU than iterating the stream (issue 14). Larger and chunked bodies are held
 * chunk by chunk as they arrive, so a client that declares a large body and sends it slowly holds only what it sent.
 */
async function readBodyText(c: Context, holds: BodyHolds): Promise<string> {
  const request = c.req.raw;
  const declared = request.headers.get("Content-Length");
  if (
    declared !== null && /^\d{1,9}$/.test(declared) && Number(declared) <= MAX_WHOLE_BODY_BYTES &&
    !request.headers.has("Transfer-Encoding")
  ) {
    // The HTTP layer ends the body at the declared length.
    holdBodyBytes(c, holds, Number(declared));
    try {
      return await request.text();
    } catch {
      throw new HttpError(400, "BadRequest", "Could not read the request body");
    }
  }
  if (request.body === null) return "";
  return await readChunkedBodyText(c, holds, request.body);
}

/** Reads a body of unknown length, holding its bytes in the in-flight budget chunk by chunk. */
async function readChunkedBodyText(
  c: Context,
  holds: BodyHolds,
  body: ReadableStream<Uint8Array>,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      holdBodyBytes(c, holds, chunk.length);
      chunks.push(chunk);
      total += chunk.length;
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, "BadRequest", "Could not read the request body");
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

/** Reads and parses the JSON body; the caller's mistakes are 400s. */
async function readJsonBody(c: Context, holds: BodyHolds): Promise<Record<string, unknown>> {
  const text = await readBodyText(c, holds);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, "BadJsonBody", `The request body is not valid JSON: ${(error as Error).message}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "BadJsonBody", "The request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** `args` may be an object or a one-element array holding it (convex-compat.md §3.1). */
function parseArgs(args: unknown): JsonValue {
  if (args === undefined || args === null) return {};
  if (Array.isArray(args)) {
    if (args.length !== 1) {
      throw new HttpError(
        400,
        "BadJsonBody",
        `\`args\` must be an object or an array of one object, not ${args.length}`,
      );
    }
    args = args[0];
  }
  if (args === null || typeof args !== "object" || Array.isArray(args)) {
    throw new HttpError(400, "BadJsonBody", "`args` must be an object or an array of one object");
  }
  // Checked without recursion before anything recursive (cache keys, convex-JSON, validators) walks the args.
  if (jsonNestingExceeds(args, MAX_JSON_ARGS_NESTING)) {
    throw new HttpError(
      400,
      "ArgsTooDeeplyNested",
      `\`args\` is nested more than ${MAX_VALUE_NESTING} levels deep, the limit of Convex values`,
    );
  }
  return args as JsonValue;
}

function parsePath(path: unknown): string {
  if (typeof path !== "string" || path.length === 0) {
    throw new HttpError(400, "BadJsonBody", "`path` must be a non-empty string naming a function");
  }
  if (path.length > MAX_PATH_LENGTH) throw new HttpError(400, "BadJsonBody", "`path` is too long");
  return path;
}

/** A component path; absent, null and `""` are the app. An unknown path fails like an unknown function. */
function parseComponentPath(componentPath: unknown): string {
  if (componentPath === undefined || componentPath === null) return "";
  if (typeof componentPath !== "string" || componentPath.length > MAX_PATH_LENGTH) {
    throw new HttpError(400, "BadJsonBody", "`componentPath` must be a string naming a component");
  }
  return componentPath;
}

function parseCallBody(body: Record<string, unknown>, defaultFormat: ValueFormat): CallBody {
  return {
    path: parsePath(body.path),
    args: parseArgs(body.args),
    format: parseFormat(body.format, defaultFormat),
    componentPath: parseComponentPath(body.componentPath),
  };
}

/**
 * A component's functions are called from outside only by an admin (`npx convex run --component` sends the admin
 * key), as Convex does; apps reach them through their own functions (`ctx.runQuery(components.x.f)`).
 */
function assertMayCallComponent(caller: Caller, body: CallBody): void {
  if (body.componentPath === "" || caller.isAdmin) return;
  throw new HttpError(
    403,
    "Unauthorized",
    `Calling a function of the component '${body.componentPath}' directly needs the deployment's admin key`,
  );
}

function parseTs(ts: unknown): bigint {
  try {
    return timestampFromBase64(ts as string);
  } catch {
    throw new HttpError(400, "BadJsonBody", "`ts` must be a base64 timestamp as returned by /api/query_ts");
  }
}

/** The response body of a call that reached the function. */
function udfResponse(result: CallResult, format: ValueFormat, requestId?: string): Record<string, JsonValue> {
  const convert = (value: JsonValue) => format === "clean" ? toCleanJson(value) : value;
  if (result.ok) {
    return { status: "success", value: convert(JSON.parse(result.valueJson)), logLines: result.logLines };
  }
  const body: Record<string, JsonValue> = {
    status: "error",
    errorMessage: framedFunctionError(result.errorMessage, requestId),
    logLines: result.logLines,
  };
  if (result.errorData !== undefined) body.errorData = convert(result.errorData);
  return body;
}

/**
 * Sends a call's response. A success splices the result's convex-JSON text in as it is (no parse and re-serialize of
 * the value on the hot path) when the format is encoded, or when the value holds no special value (`$integer`,
 * `$float`, `$bytes`), in which case its clean form is the same text; otherwise the clean format converts the value.
 */
function sendResult(c: Context, result: CallResult, format: ValueFormat, requestId?: string): Response {
  if (!result.ok || (format === "clean" && mayHoldSpecialValues(result.valueJson))) {
    return c.json(udfResponse(result, format, requestId), 200);
  }
  const text = `{"status":"success","value":${result.valueJson},"logLines":${JSON.stringify(result.logLines)}}`;
  return c.body(text, 200, { "Content-Type": "application/json" });
}

/**
 * Whether convex-JSON text may encode an Int64, a special float or bytes: those are objects with a single `$`-key,
 * and field names starting with `$` are reserved, so text without `"$` (or an escaped `$`) holds none. A string
 * containing `"$` only makes this answer true, and the value is then converted.
 */
function mayHoldSpecialValues(valueJson: string): boolean {
  return valueJson.includes('"$') || valueJson.includes("\\u0024");
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

/** Builds the function API app; mount it at `/api`. */
export function functionRoutes(backend: HttpBackend): Hono {
  const services = backend.services;
  const app = new Hono();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", functionCors());
  app.use("*", limitStreamedRequestBody(MAX_FUNCTION_REQUEST_BYTES));
  const holds: BodyHolds = { budget: new ByteBudget(MAX_FUNCTION_BODY_BYTES_IN_FLIGHT), held: new WeakMap() };
  app.use("*", async (c, next) => {
    try {
      await next();
    } finally {
      holds.budget.give(holds.held.get(c) ?? 0);
      holds.held.delete(c);
    }
  });

  const callerOf = async (c: Context): Promise<Caller> => {
    try {
      return await services.authenticator.fromAuthorizationHeader(c.req.header("Authorization"));
    } catch (error) {
      if (error instanceof AuthenticationError) throw new HttpError(error.httpStatus, error.code, error.message);
      throw error;
    }
  };

  /**
   * Runs a query, from the live cache when a result valid at the latest timestamp is there. `requestId` names the
   * execution; a cached failure keeps the ID of the execution that failed (whose log line it is), returned beside.
   */
  const query = async (caller: Caller, call: CallBody, requestId: string): Promise<[CallResult, string]> => {
    const spec: QuerySpec = {
      path: call.path,
      ...(call.componentPath === "" ? {} : { componentPath: call.componentPath }),
      args: call.args,
      identityJson: caller.identityJson,
      allowInternal: caller.isAdmin,
    };
    const key = queryKeyOf(spec); // once for the lookup and the offer after a miss
    const cached = services.subscriptions.lookup(spec, key);
    if (cached) {
      const run = cached.result;
      const ts = services.subscriptions.watermark;
      if (run.ok) {
        return [{ ok: true, udfType: "query", valueJson: run.valueJson!, logLines: run.logLines, ts }, requestId];
      }
      const failure: CallResult = {
        ok: false,
        udfType: "query",
        errorMessage: run.errorMessage!,
        errorData: run.errorData,
        logLines: run.logLines,
      };
      return [failure, run.requestId ?? requestId];
    }
    const snapshotTs = backend.database.latestTs;
    const result = await backend.executor.call({
      path: call.path,
      componentPath: call.componentPath,
      args: call.args,
      expectedType: "query",
      identityJson: caller.identityJson,
      allowInternal: caller.isAdmin,
      snapshotTs,
      requestId,
    });
    // Failures that never ran (unknown function, wrong type) carry no udfType: not worth caching.
    if (result.udfType === "query") {
      services.subscriptions.offer(spec, snapshotTs, toQueryRun(result, requestId), key);
    }
    return [result, requestId];
  };

  const call = async (c: Context, caller: Caller, body: CallBody, expectedType?: UdfType) => {
    assertMayCallComponent(caller, body);
    // One ID for the execution (its log line) and the error the client gets (request_id_contract.md).
    const [result, requestId] = expectedType === "query"
      ? await query(caller, body, newRequestId())
      : await callOnce(c, caller, body, expectedType);
    return sendResult(c, result, body.format, requestId);
  };

  const callOnce = async (
    c: Context,
    caller: Caller,
    body: CallBody,
    expectedType?: UdfType,
  ): Promise<[CallResult, string]> => {
    const requestId = newRequestId();
    const result = await backend.executor.call({
      path: body.path,
      componentPath: body.componentPath,
      args: body.args,
      expectedType,
      identityJson: caller.identityJson,
      allowInternal: caller.isAdmin,
      requestId,
      requestMetadata: requestMetadataOf(c.req.raw, remoteIpOf(c), !caller.isAdmin && caller.identityJson !== null),
    });
    return [result, requestId];
  };

  for (const udfType of ["query", "mutation", "action"] as const) {
    app.post(`/${udfType}`, async (c) => {
      // Credentials first: a bad admin key or token is refused before the body is read.
      const caller = await callerOf(c);
      const body = parseCallBody(await readJsonBody(c, holds), "encoded");
      return call(c, caller, body, udfType);
    });
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
    const body = parseCallBody(await readJsonBody(c, holds), "encoded");
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
    const raw = await readJsonBody(c, holds);
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
    return sendResult(c, result, body.format, requestId);
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
    const raw = await readJsonBody(c, holds);
    const body = parseCallBody({ ...raw, path }, "clean");
    return call(c, await callerOf(c), body, undefined);
  });

  return app;
}
