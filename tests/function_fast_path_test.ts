/**
 * The function API's lean path (src/http/function_fast_path.ts) against its Hono routes: for every request it takes,
 * it must answer exactly as the routes do (status, headers the clients read, body), and it must leave every other
 * request to them. Both run over one deployed backend, one call core and one in-flight budget.
 */
import { Hono } from "hono";
import { assert, assertEquals } from "./helpers/assert.ts";
import { ADMIN_KEY, withServer } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { functionRoutes } from "../src/http/function_routes.ts";
import { FunctionCalls } from "../src/http/function_calls.ts";
import { functionFastPath } from "../src/http/function_fast_path.ts";
import { MAX_FUNCTION_REQUEST_BYTES, MAX_WHOLE_BODY_BYTES, newBodyBudget } from "../src/http/function_body.ts";

const ORIGIN = "http://127.0.0.1:3210";
const INFO = { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 } };

interface Case {
  name: string;
  path: string;
  body: string;
  headers?: Record<string, string>;
  /** The function's value differs from call to call (a new document ID): compare its type only. */
  valueVaries?: boolean;
}

const json = (value: unknown) => JSON.stringify(value);

/** Requests the lean path must take, and answer as the routes do. */
const TAKEN: Case[] = [
  { name: "a query", path: "/api/query", body: json({ path: "messages:hello", args: { name: "ann" } }) },
  {
    name: "a query, args as a one-element array",
    path: "/api/query",
    body: json({ path: "messages:hello", args: [{ name: "b" }] }),
  },
  {
    name: "a query with a query string",
    path: "/api/query?x=1",
    body: json({ path: "messages:hello", args: { name: "q" } }),
  },
  {
    name: "an Int64 in the clean format",
    path: "/api/query",
    body: json({ path: "messages:big", args: { n: { $integer: "FQAAAAAAAAA=" } }, format: "convex_cleanjson" }),
  },
  { name: "a ConvexError", path: "/api/query", body: json({ path: "messages:fails", args: {} }) },
  {
    name: "a mutation",
    path: "/api/mutation",
    body: json({ path: "messages:send", args: { channel: "c", body: "b" } }),
    valueVaries: true,
  },
  { name: "a failing mutation", path: "/api/mutation", body: json({ path: "messages:failsMutation", args: {} }) },
  { name: "an action", path: "/api/action", body: json({ path: "messages:shout", args: { text: "hi" } }) },
  {
    name: "a mutation sent as a query",
    path: "/api/query",
    body: json({ path: "messages:send", args: { channel: "c", body: "b" } }),
  },
  { name: "bad arguments", path: "/api/query", body: json({ path: "messages:hello", args: {} }) },
  {
    name: "an internal function without the admin key",
    path: "/api/query",
    body: json({ path: "messages:secret", args: {} }),
  },
  {
    name: "an internal function with the admin key",
    path: "/api/query",
    body: json({ path: "messages:secret", args: {} }),
    headers: { Authorization: `Convex ${ADMIN_KEY}` },
  },
  { name: "an unknown function", path: "/api/query", body: json({ path: "messages:nope", args: {} }) },
  {
    name: "a component's function without the admin key",
    path: "/api/query",
    body: json({ path: "x:y", args: {}, componentPath: "agg" }),
  },
  {
    name: "a wrong admin key",
    path: "/api/query",
    body: json({ path: "messages:hello", args: { name: "x" } }),
    headers: { Authorization: `Convex test-instance|${"00".repeat(32)}` },
  },
  {
    name: "a malformed token",
    path: "/api/query",
    body: json({ path: "messages:hello", args: { name: "x" } }),
    headers: { Authorization: "Bearer not.a.jwt" },
  },
  { name: "invalid JSON", path: "/api/mutation", body: "{nope" },
  { name: "a body that is not an object", path: "/api/query", body: "[1,2]" },
  { name: "args as an array of two", path: "/api/query", body: json({ path: "messages:hello", args: [{}, {}] }) },
  { name: "no path", path: "/api/query", body: json({ args: {} }) },
  { name: "a path too long", path: "/api/query", body: json({ path: "m:" + "x".repeat(2000), args: {} }) },
  {
    name: "an unknown format",
    path: "/api/query",
    body: json({ path: "messages:hello", args: { name: "x" }, format: "xml" }),
  },
  {
    name: "args nested too deep",
    path: "/api/query",
    body: json({ path: "messages:hello", args: { a: JSON.parse("[".repeat(80) + "]".repeat(80)) } }),
  },
  { name: "an empty body", path: "/api/query", body: "" },
];

/** A request as `Deno.serve` hands it over: a client's body comes with its `Content-Length`. */
function request(method: string, path: string, body: string | null, headers: Record<string, string> = {}): Request {
  const length = body === null ? {} : { "Content-Length": String(new TextEncoder().encode(body).length) };
  return new Request(ORIGIN + path, {
    method,
    headers: { "Content-Type": "application/json", ...length, ...headers },
    ...(body === null ? {} : { body }),
  });
}

/** What a client reads of a response: status, content type, CORS header, and the body with request IDs blanked. */
async function seen(response: Response, valueVaries: boolean) {
  const text = (await response.text()).replaceAll(/\[Request ID: [0-9a-f]+\]/g, "[Request ID: _]");
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Compared as text.
  }
  if (valueVaries && typeof body === "object" && body !== null && "value" in body) {
    (body as Record<string, unknown>).value = typeof (body as Record<string, unknown>).value;
  }
  return {
    status: response.status,
    contentType: response.headers.get("Content-Type"),
    cors: response.headers.get("Access-Control-Allow-Origin"),
    body,
  };
}

Deno.test({
  name: "function fast path: answers every call it takes as the Hono routes do, and leaves the rest to them",
  async fn() {
    await withServer(async (server) => {
      const budget = newBodyBudget();
      const calls = new FunctionCalls(server.backend);
      const fast = functionFastPath(calls, budget, MAX_FUNCTION_REQUEST_BYTES);
      const app = new Hono().route("/api", functionRoutes(server.backend, budget, calls));

      for (const each of TAKEN) {
        const answered = fast(request("POST", each.path, each.body, each.headers), "127.0.0.1");
        assert(answered !== null, `the lean path takes ${each.name}`);
        const viaFast = await seen(await answered, each.valueVaries === true);
        const viaRoutes = await seen(
          await app.fetch(request("POST", each.path, each.body, each.headers), INFO),
          each.valueVaries === true,
        );
        assertEquals(viaFast, viaRoutes, each.name);
        assertEquals(viaFast.cors, "*", `${each.name}: CORS header`);
      }

      const big = json({ path: "messages:hello", args: { name: "x".repeat(MAX_WHOLE_BODY_BYTES) } });
      const chunked = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(json({ path: "messages:hello", args: { name: "s" } })));
          controller.close();
        },
      });
      const left: [string, Request][] = [
        ["a GET query", request("GET", "/api/query?path=messages:hello&args=%7B%22name%22:%22g%22%7D", null)],
        ["a preflight", request("OPTIONS", "/api/query", null, { "Access-Control-Request-Headers": "x" })],
        ["/api/function", request("POST", "/api/function", json({ path: "messages:hello", args: { name: "f" } }))],
        ["/api/run", request("POST", "/api/run/messages/hello", json({ args: { name: "r" } }))],
        ["a percent-encoded path", request("POST", "/api/%71uery", json({ path: "messages:hello", args: {} }))],
        ["a path with a trailing slash", request("POST", "/api/query/", json({ path: "messages:hello", args: {} }))],
        ["a body over the whole-body size", request("POST", "/api/query", big)],
        [
          "a streamed body",
          new Request(ORIGIN + "/api/query", { method: "POST", body: chunked, duplex: "half" } as RequestInit),
        ],
      ];
      for (const [name, each] of left) assertEquals(fast(each, "127.0.0.1"), null, `the lean path leaves ${name}`);
      // A body declared larger than the app's smallest limit goes to the app, which refuses it with its 413.
      const tight = functionFastPath(calls, budget, 10);
      assertEquals(tight(request("POST", "/api/query", json({ path: "messages:hello", args: {} })), null), null);

      assertEquals(budget.usedBytes, 0, "every request gave its bytes back");
    });
    await stopBundler();
  },
});
