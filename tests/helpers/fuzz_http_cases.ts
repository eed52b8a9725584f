/**
 * HTTP fuzz cases: a valid request for one of the server's endpoints (function API, admin and push API, storage, HTTP
 * actions, `/version`, the sync endpoint without an upgrade), then a few random mutations of it (body, bytes, method,
 * content type, credentials, path, framing, headers, compression). Case `i` of seed `s` is always the same request.
 */
import type { FuzzTarget } from "./fuzz_app.ts";
import type { BodyFraming, RawRequest } from "./fuzz_raw_http.ts";
import { Rng } from "./fuzz_rng.ts";
import { deeplyNested, type Json, MAX_FUZZ_DEPTH, mutateBytes, mutateObject, randomValue } from "./fuzz_values.ts";
import type { Bombs } from "./fuzz_bombs.ts";

/** One generated request. */
export interface HttpCase {
  index: number;
  /** The endpoint template and the mutations applied, e.g. `POST /api/query +auth +bytes`. */
  label: string;
  origin: "api" | "site";
  request: RawRequest;
  /**
   * A mutation broke HTTP framing itself (a truncated body, a huge header block, a raw control byte in the path):
   * the HTTP server may close the connection without an answer, which is a fine way to refuse.
   */
  mayDrop: boolean;
}

/** A request before mutation. */
interface Template {
  label: string;
  origin: "api" | "site";
  method: string;
  path: string;
  /** A JSON body (an object) or raw bytes; null for none. */
  body: Record<string, Json> | Uint8Array | null;
  contentType: string | null;
  /** The endpoint requires the admin key: send the right one unless a mutation says otherwise. */
  admin: boolean;
  /** Headers of the endpoint's own (e.g. `Range` for downloads). */
  headers?: [string, string][];
}

const encoder = new TextEncoder();
/** Share of picks of the bomb mutation that apply it (~50 bombs in 2,000 cases). */
const BOMB_SHARE = 0.25;
const FUNCTION_PATHS = [
  "messages:list",
  "messages:page",
  "messages:count",
  "messages:echo",
  "messages:get",
  "messages:send",
  "messages:fails",
  "messages:shout",
  "messages:secret",
  "messages:whoami",
  "messages",
  "files:url",
  "nope:nothing",
  "messages.js:list",
  "_system/cli/tables",
];

/** Valid arguments for a function path (some are wrong for their function on purpose). */
function argsFor(rng: Rng, target: FuzzTarget, path: string): Record<string, Json> {
  switch (path) {
    case "messages:list":
      return { channel: rng.pick(["a", "b", "fuzz"]) };
    case "messages:page":
      return { channel: "a", paginationOpts: { numItems: rng.range(0, 10), cursor: null } };
    case "messages:echo":
      return { value: randomValue(rng, 3) };
    case "messages:get":
      return { id: rng.chance(0.7) ? target.messageId : target.storageId };
    case "messages:send":
      return { channel: "fuzz", body: `m${rng.int(1000)}` };
    case "messages:shout":
      return { text: "hi" };
    case "files:url":
      return { id: target.storageId };
    default:
      return {};
  }
}

function callBody(rng: Rng, target: FuzzTarget, path: string): Record<string, Json> {
  const body: Record<string, Json> = { path, args: argsFor(rng, target, path) };
  if (rng.chance(0.5)) body.format = rng.pick(["json", "convex_encoded_json", "convex_json", "xml"]);
  if (rng.chance(0.2)) body.args = [body.args];
  return body;
}

/** A minimal push: one module (valid JS), no schema. Always a dry run, so a fuzzed push never replaces the app. */
function pushBody(rng: Rng): Record<string, Json> {
  const source = rng.pick(["export const a = 1;", "export default 1;", "throw new Error('x')", "export const"]);
  return {
    appDefinition: {
      definition: null,
      dependencies: [],
      schema: null,
      changedModules: [{ path: rng.pick(["fuzz.js", "../x.js", "_deps/a.js", ""]), source, environment: "isolate" }],
      unchangedModuleHashes: [],
      udfServerVersion: "1.48.0",
    },
    componentDefinitions: [],
    nodeDependencies: [],
    dryRun: true,
  };
}

function apiTemplate(rng: Rng, target: FuzzTarget): Template {
  const t = (
    label: string,
    method: string,
    path: string,
    body: Template["body"],
    admin = false,
  ): Template => ({ label, origin: "api", method, path, body, contentType: body ? "application/json" : null, admin });
  const fn = rng.pick(FUNCTION_PATHS);
  switch (rng.int(22)) {
    case 0:
    case 1:
    case 2:
      return t("POST /api/query", "POST", "/api/query", callBody(rng, target, fn));
    case 3:
    case 4:
      return t("POST /api/mutation", "POST", "/api/mutation", callBody(rng, target, fn));
    case 5:
      return t("POST /api/action", "POST", "/api/action", callBody(rng, target, fn));
    case 6:
      return t("POST /api/function", "POST", "/api/function", callBody(rng, target, fn));
    case 7: {
      const args = encodeURIComponent(JSON.stringify(argsFor(rng, target, fn)));
      return t("GET /api/query", "GET", `/api/query?path=${encodeURIComponent(fn)}&args=${args}`, null);
    }
    case 8:
      return t("/api/query_ts", rng.pick(["GET", "POST"]), "/api/query_ts", null);
    case 9:
      return t("POST /api/query_at_ts", "POST", "/api/query_at_ts", { ...callBody(rng, target, fn), ts: target.ts });
    case 10: {
      const [module, name] = fn.includes(":") ? fn.split(":") : [fn, "list"];
      return t("POST /api/run", "POST", `/api/run/${module}/${name}`, { args: argsFor(rng, target, fn) });
    }
    case 11: {
      const route = rng.pick(["get_config_hashes", "deploy2/report_push_completed", "update_environment_variables"]);
      const body: Record<string, Json> = route === "update_environment_variables"
        ? { changes: [{ name: `FUZZ_${rng.int(10)}`, value: rng.chance(0.5) ? "x" : null }] }
        : {};
      return t(`POST /api/${route}`, "POST", `/api/${route}`, body, true);
    }
    case 12:
    case 13: {
      const route = rng.pick(["deploy2/evaluate_push", "deploy2/start_push", "deploy2/evaluate_schema"]);
      return t(`POST /api/${route}`, "POST", `/api/${route}`, pushBody(rng), true);
    }
    case 14: {
      const route = rng.pick(["deploy2/wait_for_schema", "deploy2/finish_push"]);
      const body: Record<string, Json> = route === "deploy2/finish_push"
        ? { startPush: { externalDepsId: null, schemaChange: { allocatedComponentIds: {} } }, dryRun: true }
        : { schemaChange: { allocatedComponentIds: {}, schemaIds: {} }, timeoutMs: rng.pick([0, 100, -1, 1e12]) };
      return t(`POST /api/${route}`, "POST", `/api/${route}`, body, true);
    }
    case 15: {
      const route = rng.chance(0.5)
        ? "/api/v1/get_canonical_urls"
        : `/api/stream_function_logs?cursor=${rng.pick(["0", "-1", "abc", "1.5", "", "0x10"])}`;
      return t(`GET ${route.split("?")[0]}`, "GET", route, null, true);
    }
    case 16: {
      const token = rng.pick([target.uploadToken, "", "1.abc", "99999999999999.AAAA", target.uploadToken + "x"]);
      const body = rng.bytes(rng.int(2048));
      return {
        ...t("POST /api/storage/upload", "POST", `/api/storage/upload?token=${token}`, body),
        contentType: null,
      };
    }
    case 17: {
      const id = rng.pick([target.storageId, target.messageId, "nope", target.storageId.slice(0, -1) + "z"]);
      const download = t("GET /api/storage/<id>", rng.pick(["GET", "HEAD", "OPTIONS"]), `/api/storage/${id}`, null);
      if (rng.chance(0.6)) download.headers = [["Range", rng.pick(RANGES)]];
      return download;
    }
    case 18:
      return t("GET /api/sync", "GET", rng.pick(["/api/sync", "/api/1.48.0/sync", "/api/x/sync"]), null);
    case 19:
      return t("GET /version", rng.pick(["GET", "HEAD"]), "/version", null);
    case 20: {
      const site = siteTemplate(rng);
      return { ...site, origin: "api", path: `/http${site.path}`, label: `/http ${site.label}` };
    }
    default:
      return t(
        "GET unknown",
        "GET",
        rng.pick(["/", "/api", "/api/", "/dashboard", "/api/nope", "/api/push_config", "/api/deploy2/nope"]),
        null,
      );
  }
}

function siteTemplate(rng: Rng): Template {
  const t = (label: string, method: string, path: string, body: Template["body"], contentType: string | null) => ({
    label,
    origin: "site" as const,
    method,
    path,
    body,
    contentType,
    admin: false,
  });
  switch (rng.int(7)) {
    case 0:
      return t("GET /hello", "GET", "/hello", null, null);
    case 1:
      return t("POST /echo", "POST", "/echo", rng.bytes(rng.int(4096)), "application/octet-stream");
    case 2:
      return t("POST /json", "POST", "/json", { value: randomValue(rng, 3) }, "application/json");
    case 3:
      return t("GET /files/*", "GET", `/files/${percentEncode(String(randomValue(rng, 0)))}`, null, null);
    case 4:
      return t("GET /count", "GET", "/count", null, null);
    case 5:
      return t("/method", rng.pick(["PUT", "DELETE", "PATCH", "OPTIONS"]), "/method", null, null);
    default:
      return t("unrouted", rng.pick(["GET", "POST"]), rng.pick(["/", "/nowhere", "/hello/x"]), null, null);
  }
}

/** Percent-encodes every byte of the UTF-8 of `text` outside `[A-Za-z0-9]` (lone surrogates become U+FFFD). */
function percentEncode(text: string): string {
  return [...encoder.encode(text)].map((byte) =>
    /[A-Za-z0-9]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, "0")}`
  ).join("");
}

/** Range headers: satisfiable, suffix, past the end, inverted, multi-range, malformed, huge. */
const RANGES = [
  "bytes=0-3",
  "bytes=-4",
  "bytes=100-",
  "bytes=5-2",
  "bytes=0-1,3-4",
  "bytes=x-y",
  "bytes=0-99999999999999999999",
  "items=0-1",
  "",
];

const ODD_PATH_SUFFIXES = ["/..", "/../..", "/%2e%2e/%2e%2e", "%00", "/%00x", "//", "/.", "?x=%ff", "/%ff%fe", "#frag"];

/** A path variant: `..` segments, NUL, bad escapes, very long, or a raw byte that is not allowed in a request line. */
function oddPath(rng: Rng, path: string): { path: string; mayDrop: boolean } {
  switch (rng.int(5)) {
    case 0:
      return { path: path + rng.pick(ODD_PATH_SUFFIXES), mayDrop: false };
    case 1:
      return { path: "/api/../" + path.replace(/^\/+/, ""), mayDrop: false };
    case 2:
      return { path: path + "/" + "a".repeat(rng.pick([300, 5_000, 70_000])), mayDrop: true };
    case 3:
      return { path: path.replace(/\//g, rng.pick(["//", "/./", "\\"])), mayDrop: false };
    default:
      return { path: path + String.fromCharCode(rng.pick([0x01, 0x7f, 0xff, 0x20])) + "x", mayDrop: true };
  }
}

/** Authorization headers: right and wrong admin keys, garbage JWTs, odd schemes, a very long one. */
function authHeader(rng: Rng, target: FuzzTarget): string | null {
  const key = target.adminKey;
  const jwtPart = () =>
    encoder.encode(JSON.stringify(randomValue(rng, 2))).toBase64({ alphabet: "base64url", omitPadding: true });
  return rng.pick([
    null,
    `Convex ${key}`,
    `Convex ${key.slice(0, -1)}0`,
    "Convex ",
    `Convex ${key}:${btoa("{not json")}`,
    `Convex ${key}:${btoa(JSON.stringify({ subject: "x", issuer: "y" }))}`,
    "Convex garbage|00",
    `Bearer ${jwtPart()}.${jwtPart()}.${jwtPart()}`,
    `Bearer ${btoa('{"alg":"none","typ":"JWT"}')}.${jwtPart()}.`,
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer " + "a".repeat(rng.pick([100, 20_000])),
    `convex ${key}`,
  ]);
}

const CONTENT_TYPES = [
  "application/json",
  "text/plain",
  "application/json; charset=utf-16",
  "multipart/form-data; boundary=x",
  "application/x-www-form-urlencoded",
  "\u00ff/\u00fe",
  "",
];

/** A request being mutated. */
interface Draft {
  method: string;
  path: string;
  /** The JSON body as an object, while it still is one (structural mutations need it). */
  body: Record<string, Json> | null;
  bytes: Uint8Array | null;
  contentType: string | null;
  auth: string | null;
  encoding: string | null;
  framing: BodyFraming;
  extraHeaders: [string, string][];
  mayDrop: boolean;
  /** Names of the mutations applied, for the label. */
  applied: string[];
}

const MUTATIONS: readonly [string, (rng: Rng, draft: Draft, target: FuzzTarget, bombs: Bombs) => void][] = [
  ["field", (rng, draft) => {
    if (draft.body === null) return;
    draft.body = mutateObject(rng, draft.body);
    draft.bytes = encoder.encode(JSON.stringify(draft.body));
  }],
  ["bytes", (rng, draft) => draft.bytes = mutateBytes(rng, draft.bytes ?? new Uint8Array())],
  ["random-body", (rng, draft) => draft.bytes = encoder.encode(JSON.stringify(randomValue(rng, 4)))],
  ["deep", (rng, draft) => draft.bytes = encoder.encode(deeplyNested(rng, rng.pick([17, 1_000, MAX_FUZZ_DEPTH])))],
  ["auth", (rng, draft, target) => draft.auth = authHeader(rng, target)],
  ["content-type", (rng, draft) => draft.contentType = rng.pick(CONTENT_TYPES)],
  ["method", (rng, draft) => draft.method = rng.pick(METHODS)],
  ["framing", (rng, draft) => {
    draft.framing = rng.pick<BodyFraming>(["chunked", "truncated", "none"]);
    draft.mayDrop ||= draft.framing !== "chunked";
  }],
  ["path", (rng, draft) => {
    const odd = oddPath(rng, draft.path);
    draft.path = odd.path;
    draft.mayDrop ||= odd.mayDrop;
  }],
  ["headers", (rng, draft) => {
    // Hyper limits the header block (~400 KiB in total, 100 headers): past it, 431 or a closed connection.
    if (rng.chance(0.5)) draft.extraHeaders.push(["X-Fuzz", "v".repeat(rng.pick([8_000, 100_000, 600_000]))]);
    else for (let i = rng.pick([50, 150]); i > 0; i--) draft.extraHeaders.push([`X-Fuzz-${i}`, "v"]);
    draft.mayDrop = true;
  }],
  ["bomb", (rng, draft, _target, bombs) => {
    // Rarer than the other mutations: an authenticated push bomb costs the server ~1 s of CPU (the cap is 160 MiB).
    if (!rng.chance(BOMB_SHARE)) return;
    const bomb = rng.pick(bombs.all);
    draft.bytes = bomb.bytes;
    draft.encoding = bomb.encoding;
    draft.applied.push(`bomb:${bomb.name}`);
  }],
  ["encoding", (rng, draft) => draft.encoding = rng.pick(["gzip", "br", "deflate", "identity", "zstd", "br, gzip"])],
  ["large-body", (rng, draft) => {
    draft.bytes = rng.chance(0.5)
      ? encoder.encode(JSON.stringify({ path: "messages:echo", args: { value: "x".repeat(1024 * 1024) } }))
      : rng.bytes(rng.int(64 * 1024));
  }],
];

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO", "post"];

function draftOf(rng: Rng, template: Template, target: FuzzTarget): Draft {
  const body = template.body instanceof Uint8Array ? null : template.body;
  return {
    method: template.method,
    path: template.path,
    body,
    bytes: template.body instanceof Uint8Array ? template.body : body && encoder.encode(JSON.stringify(body)),
    contentType: template.contentType,
    auth: template.admin && rng.chance(0.6) ? `Convex ${target.adminKey}` : null,
    encoding: null,
    framing: "length",
    extraHeaders: [...(template.headers ?? [])],
    mayDrop: false,
    applied: [],
  };
}

function requestOf(draft: Draft): RawRequest {
  const headers: [string, string][] = [];
  if (draft.contentType !== null) headers.push(["Content-Type", draft.contentType]);
  if (draft.auth !== null) headers.push(["Authorization", draft.auth]);
  if (draft.encoding !== null) headers.push(["Content-Encoding", draft.encoding]);
  headers.push(...draft.extraHeaders);
  const framing = draft.bytes === null && draft.framing === "length" ? "none" : draft.framing;
  return { method: draft.method, target: draft.path, headers, body: draft.bytes ?? undefined, framing };
}

/** Builds case `index` of `seed` against `target`: a template, then up to three mutations. */
export function httpCase(seed: number, index: number, target: FuzzTarget, bombs: Bombs): HttpCase {
  const rng = new Rng(seed, index);
  const template = rng.chance(0.3) ? siteTemplate(rng) : apiTemplate(rng, target);
  const draft = draftOf(rng, template, target);
  for (let n = rng.pick([0, 1, 1, 2, 3]); n > 0; n--) {
    const [name, mutate] = rng.pick(MUTATIONS);
    if (name !== "bomb") draft.applied.push(name);
    mutate(rng, draft, target, bombs);
  }
  const label = [`${template.origin}: ${template.label}`, ...draft.applied.map((name) => `+${name}`)].join(" ");
  return { index, label, origin: template.origin, request: requestOf(draft), mayDrop: draft.mayDrop };
}
