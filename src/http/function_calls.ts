/**
 * Running a parsed call request (convex-compat.md §3): its caller from the `Authorization` header, a query through the
 * live cache, anything else through the executor, and the response the official clients read (`{status: "success" |
 * "error", ...}`, 200 whenever the function was reached). Free of the HTTP framework, so the routes
 * (function_routes.ts) and the lean path (function_fast_path.ts) answer alike.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import { AuthenticationError, type Caller } from "../auth/mod.ts";
import type { CallResult } from "../functions/mod.ts";
import { queryKeyOf, type QuerySpec } from "../subscriptions/mod.ts";
import { toQueryRun } from "../sync/mod.ts";
import type { JsonValue } from "../values/mod.ts";
import { framedFunctionError, newRequestId } from "../errors/mod.ts";
import { type BodyHold, type CallBody, parseCallBody, readJsonBody } from "./function_body.ts";
import { toCleanJson, type ValueFormat } from "./function_format.ts";
import { HttpError } from "./errors.ts";
import { requestMetadataOf } from "./request_metadata.ts";
import type { HttpBackend } from "./types.ts";

export type UdfType = "query" | "mutation" | "action";

const JSON_HEADERS = { "Content-Type": "application/json" };

/** A call request as the HTTP layer received it: the request itself and the peer's address. */
export interface ReceivedCall {
  request: Request;
  remoteIp: string | null;
}

/**
 * A component's functions are called from outside only by an admin (`npx convex run --component` sends the admin
 * key), as Convex does; apps reach them through their own functions (`ctx.runQuery(components.x.f)`).
 */
export function assertMayCallComponent(caller: Caller, body: CallBody): void {
  if (body.componentPath === "" || caller.isAdmin) return;
  throw new HttpError(
    403,
    "Unauthorized",
    `Calling a function of the component '${body.componentPath}' directly needs the deployment's admin key`,
  );
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
 * A call's response. A success splices the result's convex-JSON text in as it is (no parse and re-serialize of the
 * value on the hot path) when the format is encoded, or when the value holds no special value (`$integer`, `$float`,
 * `$bytes`), in which case its clean form is the same text; otherwise the clean format converts the value.
 */
export function resultResponse(result: CallResult, format: ValueFormat, requestId?: string): Response {
  const text = !result.ok || (format === "clean" && mayHoldSpecialValues(result.valueJson))
    ? JSON.stringify(udfResponse(result, format, requestId))
    : `{"status":"success","value":${result.valueJson},"logLines":${JSON.stringify(result.logLines)}}`;
  return new Response(text, { status: 200, headers: JSON_HEADERS });
}

/**
 * Whether convex-JSON text may encode an Int64, a special float or bytes: those are objects with a single `$`-key,
 * and field names starting with `$` are reserved, so text without `"$` (or an escaped `$`) holds none. A string
 * containing `"$` only makes this answer true, and the value is then converted.
 */
function mayHoldSpecialValues(valueJson: string): boolean {
  return valueJson.includes('"$') || valueJson.includes("\\u0024");
}

/** Runs call requests of one deployment. */
export class FunctionCalls {
  readonly #backend: HttpBackend;

  constructor(backend: HttpBackend) {
    this.#backend = backend;
  }

  /** The caller an `Authorization` header names; bad credentials are the HTTP error the authenticator says. */
  async callerOf(authorization: string | null | undefined): Promise<Caller> {
    try {
      return await this.#backend.services.authenticator.fromAuthorizationHeader(authorization ?? undefined);
    } catch (error) {
      if (error instanceof AuthenticationError) throw new HttpError(error.httpStatus, error.code, error.message);
      throw error;
    }
  }

  /**
   * Answers `POST /api/query`, `/api/mutation` or `/api/action` (`udfType`): credentials first (a bad admin key or
   * token is refused before the body is read), then the body, held in `hold`, then the call.
   */
  async typedCall(received: ReceivedCall, hold: BodyHold, udfType: UdfType): Promise<Response> {
    const caller = await this.callerOf(received.request.headers.get("Authorization"));
    const body = parseCallBody(await readJsonBody(received.request, hold), "encoded");
    return await this.call(received, caller, body, udfType);
  }

  /** Runs `body` as `expectedType` (found by lookup when absent) and answers with its result. */
  async call(received: ReceivedCall, caller: Caller, body: CallBody, expectedType?: UdfType): Promise<Response> {
    assertMayCallComponent(caller, body);
    // One ID for the execution (its log line) and the error the client gets (request_id_contract.md).
    let requestId = newRequestId();
    let result: CallResult;
    if (expectedType === "query") [result, requestId] = await this.#query(caller, body, requestId);
    else result = await this.#callOnce(received, caller, body, expectedType, requestId);
    return resultResponse(result, body.format, requestId);
  }

  /**
   * Runs a query, from the live cache when a result valid at the latest timestamp is there. `requestId` names the
   * execution; a cached failure keeps the ID of the execution that failed (whose log line it is), returned beside.
   */
  async #query(caller: Caller, call: CallBody, requestId: string): Promise<[CallResult, string]> {
    const { services, database, executor } = this.#backend;
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
    const snapshotTs = database.latestTs;
    const result = await executor.call({
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
    if (result.udfType === "query") services.subscriptions.offer(spec, snapshotTs, toQueryRun(result, requestId), key);
    return [result, requestId];
  }

  #callOnce(
    received: ReceivedCall,
    caller: Caller,
    body: CallBody,
    expectedType: UdfType | undefined,
    requestId: string,
  ): Promise<CallResult> {
    const asUser = !caller.isAdmin && caller.identityJson !== null;
    return this.#backend.executor.call({
      path: body.path,
      componentPath: body.componentPath,
      args: body.args,
      expectedType,
      identityJson: caller.identityJson,
      allowInternal: caller.isAdmin,
      requestId,
      requestMetadata: requestMetadataOf(received.request, received.remoteIp, asUser),
    });
  }
}
