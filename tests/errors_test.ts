/**
 * The error model (src/errors/): every error class is a `DenvexError` with a code, an HTTP status and a retryable
 * flag; each edge maps it in one function (HTTP `{code, message}` with the status, the syscall failure user code
 * sees, a failed call's message). End to end: a missing or wrong admin key gets the same 403 and `{code, message}`
 * from every admin endpoint family of a real server.
 */
import { badAdminKeyError, missingAdminKeyError, TokenError } from "../src/auth/mod.ts";
import { SyscallError } from "../src/database/mod.ts";
import { DeployError } from "../src/deploy/mod.ts";
import {
  callFailureOf,
  DenvexError,
  errorCodeOf,
  isRetryable,
  newRequestId,
  syscallFailureOf,
} from "../src/errors/mod.ts";
import { errorResponseFor, HttpError } from "../src/http/mod.ts";
import { DatabaseUnavailableError, PersistenceError } from "../src/persistence/mod.ts";
import { RunnerPoolFullError } from "../src/runtime/mod.ts";
import { BlobTooLargeError, StorageFullError } from "../src/storage/mod.ts";
import { QueryCacheFullError } from "../src/subscriptions/mod.ts";
import { ValueError } from "../src/values/mod.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./helpers/assert.ts";
import { createConvexApp, runConvexCli } from "./helpers/convex_app.ts";
import { spawnServerChild } from "./helpers/server_child.ts";

/** The message of every 500 that hides its cause (src/http/errors.ts). */
const INTERNAL_MESSAGE = "Your request couldn't be completed. Try again later.";

Deno.test("DenvexError: code, status, retryable and cause, with safe defaults", () => {
  const cause = new Error("driver said no");
  const error = new DenvexError("SomethingFailed", "it failed", { httpStatus: 409, retryable: true, cause });
  assertEquals([error.code, error.message, error.httpStatus, error.retryable], [
    "SomethingFailed",
    "it failed",
    409,
    true,
  ]);
  assertEquals(error.cause, cause);
  const plain = new DenvexError("Plain", "plain");
  assertEquals([plain.httpStatus, plain.retryable, "cause" in plain], [500, false, false]);
  assertEquals(errorCodeOf(plain), "Plain");
  assertEquals(errorCodeOf(new Error("x")), null);
});

Deno.test("every error class is a DenvexError; load, contention and outages are retryable", () => {
  const retryable: DenvexError[] = [
    new DatabaseUnavailableError({ cause: new Error("ECONNREFUSED") }),
    new RunnerPoolFullError("Too many calls waiting"),
    new QueryCacheFullError(64 * 1024 * 1024),
    new SyscallError("OptimisticConcurrencyControlFailure", "Documents read changed"),
    new SyscallError("CommitterFullError", "Too many commits are waiting; retry shortly"),
    new StorageFullError(),
    new HttpError(503, "TooManyConcurrentRequests", "busy"),
  ];
  for (const error of retryable) {
    assert(error instanceof DenvexError, error.name);
    assert(isRetryable(error), `${error.name} ${error.code} is retryable`);
  }
  const final: DenvexError[] = [
    new SyscallError("BadArgument", "no"),
    new ValueError("bad value"),
    new DeployError("InvalidModules", "bad module"),
    new PersistenceError("broken invariant"),
    new BlobTooLargeError(10),
    new TokenError("bad token"),
    badAdminKeyError(),
    new HttpError(400, "BadJsonBody", "nope"),
  ];
  for (const error of final) {
    assert(error instanceof DenvexError, error.name);
    assert(!isRetryable(error), `${error.name} ${error.code} is not retryable`);
  }
  assert(!isRetryable(new Error("plain")));
  assertEquals(new DatabaseUnavailableError({ cause: "x" }).cause, "x");
});

Deno.test("HTTP edge: {code, message} with the error's status; faults of ours stay a plain 500", () => {
  const cases: [unknown, number, string, string][] = [
    [new HttpError(418, "Teapot", "short and stout"), 418, "Teapot", "short and stout"],
    [new DeployError("InvalidModules", "bad module"), 400, "InvalidModules", "bad module"],
    [badAdminKeyError(), 403, "BadAdminKey", badAdminKeyError().message],
    [missingAdminKeyError(), 403, "MissingAdminKey", missingAdminKeyError().message],
    [new BlobTooLargeError(10), 413, "PayloadTooLarge", new BlobTooLargeError(10).message],
    [new StorageFullError(), 507, "StorageFull", new StorageFullError().message],
    [new DatabaseUnavailableError(), 503, "DatabaseUnavailable", new DatabaseUnavailableError().message],
    [new SyscallError("SnapshotTooOld", "pruned"), 400, "SnapshotTooOld", "pruned"],
    [new PersistenceError("index 7 has a live entry without a document"), 500, "InternalServerError", INTERNAL_MESSAGE],
    [new Error("/secret/path failed"), 500, "InternalServerError", INTERNAL_MESSAGE],
    [new SyntaxError("Unexpected token"), 400, "BadJsonBody", "Unexpected token"],
  ];
  for (const [error, status, code, message] of cases) {
    assertEquals(errorResponseFor(error), { status, body: { code, message } } as never, String(error));
  }
});

Deno.test("syscall edge: user code sees the message, and ConvexError data when the failure carries it", () => {
  assertEquals(syscallFailureOf(new SyscallError("CallFailed", "boom", { code: "BAD" })), {
    message: "boom",
    data: { code: "BAD" },
  });
  assertEquals(syscallFailureOf(new DatabaseUnavailableError()), { message: new DatabaseUnavailableError().message });
  assertEquals(syscallFailureOf(new Error("plain")), { message: "plain" });
  assertEquals(syscallFailureOf("text"), { message: "text" });
});

Deno.test("call edge: a failed call's message, retryable when the error is or nothing took effect", () => {
  assertEquals(callFailureOf(new DatabaseUnavailableError(), false), {
    errorMessage: new DatabaseUnavailableError().message,
    retryable: true,
  });
  assertEquals(callFailureOf(new SyscallError("BadArgument", "no"), false), { errorMessage: "no", retryable: false });
  assertEquals(callFailureOf(new Error("database closed"), true), { errorMessage: "database closed", retryable: true });
  assertEquals(callFailureOf(42, false), { errorMessage: "42", retryable: false });
});

/** One admin request: the endpoint family, and how to send it with `key` (null: no key at all). */
interface AdminProbe {
  family: string;
  send(origin: string, key: string | null): Promise<Response>;
}

function post(path: string, body: Record<string, unknown> = {}, keyInBody = false): AdminProbe["send"] {
  return (origin, key) => {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (key !== null && !keyInBody) headers.Authorization = `Convex ${key}`;
    const sent = key !== null && keyInBody ? { ...body, adminKey: key } : body;
    return fetch(origin + path, { method: "POST", headers, body: JSON.stringify(sent) });
  };
}

function get(path: string): AdminProbe["send"] {
  return (origin, key) => fetch(origin + path, { headers: key === null ? {} : { Authorization: `Convex ${key}` } });
}

/** Endpoints that need the admin key whatever the request. */
const ADMIN_ONLY: AdminProbe[] = [
  { family: "push (start_push)", send: post("/api/deploy2/start_push") },
  { family: "push (finish_push)", send: post("/api/deploy2/finish_push") },
  { family: "push (config hashes, key in body)", send: post("/api/get_config_hashes", {}, true) },
  { family: "environment variables", send: post("/api/update_environment_variables", { changes: [] }) },
  { family: "canonical URLs", send: get("/api/v1/get_canonical_urls") },
  { family: "function logs", send: get("/api/stream_function_logs?cursor=0") },
];

/** Function calls as admin: without a key they are anonymous calls, with a wrong one they are refused. */
const RUN_AS_ADMIN: AdminProbe[] = [
  { family: "run query as admin", send: post("/api/query", { path: "messages:list", args: {} }) },
  { family: "run mutation as admin", send: post("/api/mutation", { path: "messages:send", args: {} }) },
  { family: "run function as admin", send: post("/api/function", { path: "messages:list", args: {} }) },
  { family: "run by URL as admin", send: post("/api/run/messages/list", { args: {} }) },
];

Deno.test({
  name: "a missing or wrong admin key gets the same 403 and {code, message} from every admin endpoint",
  async fn() {
    const adminKey = "errors-test|" + "cd".repeat(32);
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-errors-" });
    const server = await spawnServerChild(dataDir, [], { DENVEX_ADMIN_KEY: adminKey });
    try {
      const origin = await server.ready();
      const wrongKey = "errors-test|" + "00".repeat(32);
      const answers = async (probes: AdminProbe[], key: string | null) => {
        const seen = new Map<string, string>();
        for (const probe of probes) {
          const response = await probe.send(origin, key);
          const body = await response.json();
          seen.set(probe.family, JSON.stringify({ status: response.status, body }));
        }
        return seen;
      };
      const expectAll = (seen: Map<string, string>, expected: unknown) => {
        for (const [family, answer] of seen) assertEquals(JSON.parse(answer), expected, family);
      };

      const bad = badAdminKeyError();
      expectAll(await answers([...ADMIN_ONLY, ...RUN_AS_ADMIN], wrongKey), {
        status: 403,
        body: { code: "BadAdminKey", message: bad.message },
      });
      const missing = missingAdminKeyError();
      expectAll(await answers(ADMIN_ONLY, null), {
        status: 403,
        body: { code: "MissingAdminKey", message: missing.message },
      });
      // The right key passes the same check (what follows may still fail: nothing is deployed).
      const canonical = await get("/api/v1/get_canonical_urls")(origin, adminKey);
      assertEquals(canonical.status, 200);
      await canonical.body?.cancel();

      // The official CLI prints the server's message for a 403 (for a 401 it would advise `npx convex dev`).
      const app = await createConvexApp({ "messages.ts": "export const unused = 1;\n" });
      try {
        const deployed = await runConvexCli(app, ["deploy", "--yes"], { url: origin, adminKey: wrongKey });
        const printed = deployed.stdout + deployed.stderr;
        assert(deployed.code !== 0, printed);
        assertStringIncludes(printed, bad.message);
        assert(!printed.includes("Authenticate with"), printed);
      } finally {
        await app.dispose();
      }
    } finally {
      await server.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test("request IDs: 16 lowercase hex digits, never repeated across refills of their random pool", () => {
  const seen = new Set<string>();
  // 2,000 IDs use the 4 KiB pool of random bytes about four times over.
  for (let i = 0; i < 2_000; i++) {
    const id = newRequestId();
    assertMatch(id, /^[0-9a-f]{16}$/);
    seen.add(id);
  }
  assertEquals(seen.size, 2_000);
});
