/** The function API over HTTP (convex-compat.md §3), driven by the official `ConvexHttpClient` and raw requests. */
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { ConvexError } from "convex/values";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { ADMIN_KEY, withServer } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";

const api = anyApi;

/** Methods the client marks `@internal` (used by the CLI and dashboards). */
interface InternalClient {
  setAdminAuth(key: string, identity?: Record<string, unknown>): void;
  function(name: unknown, componentPath: string | undefined, args: Record<string, unknown>): Promise<unknown>;
}
function internal(client: ConvexHttpClient): InternalClient {
  return client as unknown as InternalClient;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

Deno.test({
  name: "http api: ConvexHttpClient query, mutation, action, function, consistentQuery",
  async fn() {
    await withServer(async (server) => {
      const client = new ConvexHttpClient(server.url);
      assertEquals(await client.query(api.messages.hello, { name: "ann" }), "hello ann");
      assertEquals(await client.query(api.messages.big, { n: 21n }), { n: 42n, f: 1.5 });
      const id = await client.mutation(api.messages.send, { channel: "a", body: "one" });
      assert(typeof id === "string");
      assertEquals(await client.query(api.messages.list, { channel: "a" }), ["one"]);
      await client.mutation(api.messages.send, { channel: "a", body: "two" });
      assertEquals(await client.query(api.messages.list, { channel: "a" }), ["one", "two"]);
      assertEquals(await client.action(api.messages.shout, { text: "hi" }), "HI 2");
      assertEquals(await internal(client).function(api.messages.count, undefined, {}), 2);
      assertEquals(await internal(client).function("messages:hello", undefined, { name: "fn" }), "hello fn");
      assertEquals(await client.consistentQuery(api.messages.count, {}), 2);
      assertEquals(await client.query("messages" as never, {}), "default export");
    });
  },
});

Deno.test({
  name: "http api: errors, ConvexError data, internal functions and admin auth",
  async fn() {
    await withServer(async (server) => {
      const client = new ConvexHttpClient(server.url);
      const error = await assertRejects(() => client.query(api.messages.fails, {}), ConvexError);
      assertEquals((error as ConvexError<string>).data as unknown, { code: "BAD", n: 3n });
      const failed = await assertRejects(() => client.mutation(api.messages.failsMutation, {}), ConvexError);
      assertEquals((failed as ConvexError<string>).data, "nope");
      await assertRejects(() => client.query(api.messages.secret, {}), Error, "Could not find public function");
      await assertRejects(() => client.query(api.messages.send, { channel: "x", body: "y" }), Error, "mutation");
      await assertRejects(() => client.query(api.messages.hello, {}), Error, "ArgumentValidationError");

      const admin = new ConvexHttpClient(server.url);
      internal(admin).setAdminAuth(ADMIN_KEY);
      assertEquals(await admin.query(api.messages.secret, {}), "secret");
      assertEquals(await admin.query(api.messages.whoami, {}), null);
      internal(admin).setAdminAuth(ADMIN_KEY, { subject: "u1", issuer: "https://issuer.example" });
      const who = await admin.query(api.messages.whoami, {}) as Record<string, unknown>;
      assertEquals(who.tokenIdentifier, "https://issuer.example|u1");

      const bad = new ConvexHttpClient(server.url);
      internal(bad).setAdminAuth("test-instance|" + "00".repeat(32));
      await assertRejects(() => bad.query(api.messages.secret, {}), Error, "BadAdminKey");
      const forged = new ConvexHttpClient(server.url);
      forged.setAuth("not.a.jwt");
      await assertRejects(() => forged.query(api.messages.hello, { name: "x" }), Error, "InvalidAuthHeader");
    });
  },
});

Deno.test({
  name: "http api: malformed requests are clear 4xx errors and the server keeps serving",
  async fn() {
    await withServer(async (server) => {
      const cases: [string, unknown, number, string][] = [
        ["/api/query", "{not json", 400, "BadJsonBody"],
        ["/api/query", "[1,2]", 400, "BadJsonBody"],
        ["/api/query", { args: {} }, 400, "BadJsonBody"],
        ["/api/query", { path: "messages:hello", args: [1, 2] }, 400, "BadJsonBody"],
        ["/api/query", { path: "messages:hello", args: "x" }, 400, "BadJsonBody"],
        ["/api/query", { path: "messages:hello", args: {}, format: "xml" }, 400, "BadFormat"],
        ["/api/query_at_ts", { path: "messages:count", args: {}, ts: "nope" }, 400, "BadJsonBody"],
        ["/api/query_at_ts", { path: "messages:count", args: {}, ts: "//////////8=" }, 400, "TimestampInFuture"],
        // A component's functions need the admin key (as `npx convex run --component` sends).
        ["/api/function", { path: "messages:count", args: {}, componentPath: "c" }, 403, "Unauthorized"],
        ["/api/run/messages", {}, 404, "NotFound"],
      ];
      for (const [path, body, status, code] of cases) {
        const response = await post(server.url + path, body);
        const json = await response.json();
        assertEquals([path, response.status, json.code], [path, status, code], JSON.stringify(json));
        assert(typeof json.message === "string" && json.message.length > 0);
      }
      const huge = await post(server.url + "/api/query", { path: "messages:hello", args: { name: "x".repeat(17e6) } });
      assertEquals(huge.status, 413);
      assertEquals((await huge.json()).code, "PayloadTooLarge");
      const unknown = await post(server.url + "/api/query", { path: "nope:nothing", args: {} });
      assertEquals(unknown.status, 200);
      const unknownBody = await unknown.json();
      assertEquals(unknownBody.status, "error");
      assert(unknownBody.errorMessage.includes("Could not find public function for 'nope:nothing'"));
      const badAuth = await post(server.url + "/api/query", { path: "messages:count", args: {} }, {
        Authorization: "Basic abc",
      });
      assertEquals(badAuth.status, 401);
      assertEquals((await badAuth.json()).code, "BadAuthHeader");
      const ok = await post(server.url + "/api/query", { path: "messages:hello", args: [{ name: "z" }] });
      assertEquals(await ok.json(), { status: "success", value: "hello z", logLines: [] });
    });
  },
});

Deno.test({
  name: "http api: /api/run with clean JSON, query_ts, CORS preflight, log lines",
  async fn() {
    await withServer(async (server) => {
      const run = await post(server.url + "/api/run/messages/big", { args: { n: { $integer: "BQAAAAAAAAA=" } } });
      assertEquals(await run.json(), { status: "success", value: { n: "10", f: 1.5 }, logLines: [] });
      const sent = await post(server.url + "/api/mutation", {
        path: "messages:send",
        args: [{ channel: "c", body: "b" }],
        format: "convex_encoded_json",
      });
      const sentBody = await sent.json();
      assertEquals(sentBody.status, "success");
      assertEquals(sentBody.logLines, ["[LOG] 'sending' 'b'"]);
      const ts = await (await post(server.url + "/api/query_ts", "")).json();
      assert(typeof ts.ts === "string" && ts.ts.length === 12);
      const at = await post(server.url + "/api/query_at_ts", { path: "messages:count", args: {}, ts: ts.ts });
      assertEquals((await at.json()).value, 1);
      const preflight = await fetch(server.url + "/api/query", {
        method: "OPTIONS",
        headers: {
          Origin: "http://example.com",
          "Access-Control-Request-Method": "POST",
          "Access-Control-Request-Headers": "authorization, content-type, convex-client",
        },
      });
      await preflight.body?.cancel();
      assertEquals(preflight.status, 204);
      assertEquals(preflight.headers.get("access-control-allow-origin"), "*");
      assert(preflight.headers.get("access-control-allow-headers")!.includes("authorization"));
      const plain = await post(server.url + "/api/query", { path: "messages:count", args: {} }, {
        Origin: "http://example.com",
      });
      await plain.body?.cancel();
      assertEquals(plain.headers.get("access-control-allow-origin"), "*");
    });
    await stopBundler();
  },
});
