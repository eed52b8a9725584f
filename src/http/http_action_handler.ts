/**
 * Serves HTTP actions (convex-compat.md §4.2): a request to the site origin runs the deployment's `http.js` router in
 * an action runner, with the action context (`ctx.runQuery` & co. route like an action's). Unrouted paths get a 404
 * JSON `{code, message}` (the official router's text); a handler that throws gets Convex's 500 JSON
 * `{code, trace, data}`; the error goes to the execution log; the server never falls over.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import type { HttpBackend } from "./types.ts";
import type { JsonValue } from "../values/mod.ts";
import type { ExecutionResult } from "../runtime/mod.ts";
import type { HttpRequestHead } from "../runtime/mod.ts";
import { componentEnvironments } from "../functions/mod.ts";
import { AuthenticationError } from "../auth/mod.ts";
import { failedIdentityJson, identityFailureOf } from "../errors/mod.ts";
import { requestMetadataOf } from "./request_metadata.ts";
import { ResponseRelay } from "./http_action_exchange.ts";
import { hasHandler, routeHttpRequest } from "./http_routing.ts";
import { badRequestBody } from "./request_body.ts";

/** Methods an `http.js` route may have; HEAD is routed as GET. */
const ROUTABLE_METHODS = new Set(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
/** The failure of an HTTP action that ended without reporting one. */
const FAILURE_TEXT = "Uncaught Error: the HTTP action failed";

/** Runs the HTTP action for `request`, whose path (without any mount prefix) is `path`. */
export async function handleHttpAction(
  backend: HttpBackend,
  request: Request,
  path: string,
  remoteIp: string | null = null,
): Promise<Response> {
  const deployment = backend.deployments.active;
  const method = request.method === "HEAD" ? "GET" : request.method;
  if (deployment === null || !ROUTABLE_METHODS.has(method)) return notRouted(path);
  const route = routeHttpRequest(deployment, path, method);
  if (route === null || !hasHandler(route, method)) return notRouted(route?.routedPath ?? path);
  const componentPath = route.component.path;
  const url = new URL(request.url);
  url.pathname = path;
  const head: HttpRequestHead = {
    method: request.method,
    url: url.href,
    headers: [...request.headers.entries()],
    hasBody: request.body !== null,
    // A mounted component's router looks up the path below its mount; `request.url` stays what the client sent.
    ...(componentPath === "" ? {} : { routedPath: route.routedPath }),
  };
  const urlsEnv = { CONVEX_CLOUD_URL: backend.urls.cloudUrl, CONVEX_SITE_URL: backend.urls.siteUrl };
  const envs = componentEnvironments(deployment, componentPath, {
    ...backend.deployments.environmentVariables,
    ...urlsEnv,
  });
  const identityJson = await identityOf(backend, request.headers.get("Authorization"));
  // A client that goes away stops the action (its runner is recycled) and the call fails. Before the response is
  // returned, that is the request's abort signal (which, in Deno 2.9.6, also fires after a successful response, hence
  // `responded`); while a body streams, it is the body being cancelled.
  const disconnect = new AbortController();
  let responded = false;
  request.signal.addEventListener("abort", () => {
    if (!responded) disconnect.abort();
  }, { once: true });
  const relay = new ResponseRelay(request, () => disconnect.abort());
  const requestId = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
  const startedAtMs = Date.now();
  const execution = backend.pool.execute({
    udfType: "action",
    modulePath: "http.js",
    exportName: "default",
    argsJson: "[{}]",
    identityJson,
    env: envs.env,
    requestId,
    requestMetadata: requestMetadataOf(
      request,
      remoteIp,
      identityJson !== null && identityFailureOf(identityJson) === null,
    ),
    deploymentDir: deployment.dir,
    ...(componentPath === "" ? {} : { componentPath }),
    ...(envs.others === undefined ? {} : { componentEnvs: envs.others }),
    http: { head, exchange: relay },
    signal: disconnect.signal,
  }).catch((error): ExecutionResult => ({
    ok: false,
    errorMessage: error instanceof Error ? error.message : String(error),
    logLines: [],
    executionTimeMs: Date.now() - startedAtMs,
  }));
  void execution.then((result) => {
    relay.finish(result.ok ? undefined : new Error(result.errorMessage));
    backend.executionLog.append({
      udfType: "action",
      ...(componentPath === "" ? {} : { componentPath }),
      displayName: `${method} ${route.routedPath}`,
      modulePath: "http.js",
      exportName: "default",
      ok: result.ok,
      ...(result.errorMessage === undefined ? {} : { errorMessage: result.errorMessage }),
      logLines: result.logLines,
      ...(result.logSources === undefined ? {} : { logSources: result.logSources }),
      startedAtMs,
      executionTimeMs: result.executionTimeMs,
      requestId,
    });
  });
  const first = await Promise.race([relay.head.promise, execution]);
  responded = true;
  if ("status" in first) {
    const bodyless = request.method === "HEAD" || first.status === 204 || first.status === 304;
    if (first.whole !== undefined) {
      // The complete body came with the head: answer with plain bytes, no stream to wait on.
      return new Response(bodyless ? null : first.whole, {
        status: first.status,
        statusText: first.statusText,
        headers: first.headers,
      });
    }
    // Nobody reads a dropped body: cancel it so the runner's chunks are acknowledged instead of piling up.
    if (bodyless) relay.dropBody();
    return new Response(bodyless ? null : relay.body, {
      status: first.status,
      statusText: first.statusText,
      headers: first.headers,
    });
  }
  if (relay.requestBodyFailed) {
    // The handler failed because the client's body ended early: a 400, not the action's fault.
    const error = badRequestBody();
    return Response.json({ code: error.code, message: error.message }, { status: error.status });
  }
  return failedActionResponse(requestId, first);
}

/**
 * What a failed HTTP action answers, as Convex does: 500 with JSON `{code, trace, data?}`, `code` being
 * `[Request ID: <id>] Server Error: <the error's first lines>`, `trace` the whole failure with its stack frames, and
 * `data` a ConvexError's data.
 */
function failedActionResponse(requestId: string, result: ExecutionResult): Response {
  const trace = result.errorMessage ?? FAILURE_TEXT;
  const body: Record<string, JsonValue> = {
    code: `[Request ID: ${requestId}] Server Error: ${withoutStackFrames(trace)}`,
    trace,
  };
  if (result.errorData !== undefined) body.data = result.errorData;
  return Response.json(body, { status: 500 });
}

/** The message part of a failure (what precedes its first `at …` stack line). */
function withoutStackFrames(errorMessage: string): string {
  const lines = errorMessage.split("\n");
  const firstFrame = lines.findIndex((line) => /^\s+at /.test(line));
  return (firstFrame === -1 ? lines : lines.slice(0, firstFrame)).join("\n").trimEnd();
}

/** The official answer for a path no route matches. */
function notRouted(path: string): Response {
  // The official router's text, in the JSON error shape every other error of the server has.
  return Response.json({ code: "NotFound", message: `No HttpAction routed for ${path}` }, { status: 404 });
}

/**
 * The identity `ctx.auth.getUserIdentity()` returns in the action: from a `Bearer` JWT checked against
 * `auth.config.ts`. A `Bearer` value that does not verify (not a JWT, expired, no matching provider) does not refuse
 * the request, since the route may authenticate callers its own way (a webhook's secret): as on Convex, the action
 * runs and `getUserIdentity()` throws the verification error (errors/identity_failure.ts). No header, an admin key or
 * another scheme means no identity.
 */
async function identityOf(backend: HttpBackend, header: string | null): Promise<string | null> {
  if (header === null || !/^Bearer\s/i.test(header)) return null;
  try {
    const caller = await backend.services.authenticator.fromAuthorizationHeader(`Bearer ${header.slice(7).trim()}`);
    return caller.isAdmin ? null : caller.identityJson;
  } catch (error) {
    if (error instanceof AuthenticationError) return failedIdentityJson(error);
    return failedIdentityJson({ code: "Unauthenticated", message: "Could not verify the auth token" });
  }
}
