/**
 * End to end: HTTP actions (`convex/http.ts`) deployed with the official CLI to the real server process, answered on
 * the site origin and under `/http/` on the API origin: exact and prefix routes, methods, headers, bodies in both
 * directions (streamed), `ctx.runQuery`, 404 for unrouted paths, and a throwing handler answered with 500.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, spawnServer } from "./helpers/convex_app.ts";

const APP: Record<string, string> = {
  "messages.ts": `
import { query } from "./_generated/server";
import { v } from "convex/values";
export const greet = query({ args: { name: v.string() }, handler: async (_ctx, { name }) => "hello " + name });
`,
  "http.ts": `
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
import { api } from "./_generated/api";
const http = httpRouter();
http.route({
  path: "/hello",
  method: "GET",
  handler: httpAction(async (_ctx, request) =>
    new Response("hello " + new URL(request.url).searchParams.get("who"), {
      status: 201,
      headers: { "content-type": "text/plain", "x-denvex": "yes" },
    })),
});
http.route({
  path: "/echo",
  method: "POST",
  handler: httpAction(async (_ctx, request) => {
    let bytes = 0;
    const hash = new Uint32Array(1);
    // Read the body as a stream (it arrives in chunks) and echo it back as a stream.
    const [a, b] = request.body!.tee();
    for await (const chunk of a) bytes += chunk.length;
    hash[0] = bytes;
    return new Response(b, { headers: { "x-bytes": String(hash[0]), "content-type": request.headers.get("content-type") ?? "" } });
  }),
});
for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS"] as const) {
  http.route({ path: "/method", method, handler: httpAction(async (_ctx, request) => new Response(request.method)) });
}
http.route({
  pathPrefix: "/files/",
  method: "GET",
  handler: httpAction(async (_ctx, request) => new Response("prefix " + new URL(request.url).pathname)),
});
http.route({
  path: "/greet",
  method: "GET",
  handler: httpAction(async (ctx) => new Response(await ctx.runQuery(api.messages.greet, { name: "query" }))),
});
http.route({
  path: "/stream",
  method: "GET",
  handler: httpAction(async () => {
    let i = 0;
    const body = new ReadableStream({
      async pull(controller) {
        if (i === 5) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, 20));
        controller.enqueue(new TextEncoder().encode("part" + i++ + "\\n"));
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  }),
});
http.route({
  path: "/big",
  method: "GET",
  handler: httpAction(async () => new Response(new Uint8Array(3 * 1024 * 1024).fill(7))),
});
http.route({
  path: "/throw",
  method: "GET",
  handler: httpAction(async () => {
    console.log("about to throw");
    throw new Error("handler exploded");
  }),
});
export default http;
`,
};

Deno.test({
  name: "http actions: routes, methods, streamed bodies, runQuery, 404 and 500 on both origins",
  async fn(t) {
    const server = await spawnServer();
    const app = await createConvexApp(APP);
    try {
      const deployed = await runConvexCli(app, DEPLOY_ARGS, server);
      assertEquals(deployed.code, 0, deployed.stdout + deployed.stderr);
      for (const [origin, base] of [["site", server.siteUrl], ["api /http", `${server.url}/http`]]) {
        await t.step(`${origin}: GET with status, headers and query string`, async () => {
          const response = await fetch(`${base}/hello?who=ann`);
          assertEquals(response.status, 201);
          assertEquals(response.headers.get("x-denvex"), "yes");
          assertEquals(await response.text(), "hello ann");
        });
        await t.step(`${origin}: HEAD is routed as GET, without a body`, async () => {
          const response = await fetch(`${base}/hello?who=ann`, { method: "HEAD" });
          assertEquals(response.status, 201);
          assertEquals(await response.text(), "");
        });
        await t.step(`${origin}: methods and prefix routes`, async () => {
          for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS"]) {
            const response = await fetch(`${base}/method`, { method });
            assertEquals(await response.text(), method);
          }
          const prefixed = await fetch(`${base}/files/a/b.txt`);
          assertEquals(await prefixed.text(), "prefix /files/a/b.txt");
        });
        await t.step(`${origin}: POST echo of a 2 MiB streamed body`, async () => {
          const body = new Uint8Array(2 * 1024 * 1024).map((_, i) => i % 251);
          const response = await fetch(`${base}/echo`, {
            method: "POST",
            body,
            headers: { "content-type": "application/octet-stream" },
          });
          assertEquals(response.status, 200);
          assertEquals(response.headers.get("x-bytes"), String(body.length));
          assertEquals(response.headers.get("content-type"), "application/octet-stream");
          const echoed = new Uint8Array(await response.arrayBuffer());
          assertEquals(echoed.length, body.length);
          assert(echoed.every((byte, i) => byte === body[i]), "echoed bytes differ");
        });
        await t.step(`${origin}: runQuery from the handler`, async () => {
          assertEquals(await (await fetch(`${base}/greet`)).text(), "hello query");
        });
        await t.step(`${origin}: streamed response arrives in parts`, async () => {
          const response = await fetch(`${base}/stream`);
          const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
          const first = await reader.read();
          assert(!first.done && first.value.startsWith("part0"), `first part: ${first.value}`);
          let text = first.value;
          for (let part = await reader.read(); !part.done; part = await reader.read()) text += part.value;
          assertEquals(text, "part0\npart1\npart2\npart3\npart4\n");
        });
        await t.step(`${origin}: 3 MiB response body`, async () => {
          const bytes = new Uint8Array(await (await fetch(`${base}/big`)).arrayBuffer());
          assertEquals(bytes.length, 3 * 1024 * 1024);
          assert(bytes.every((byte) => byte === 7));
        });
        await t.step(`${origin}: unrouted path and method are 404`, async () => {
          let response = await fetch(`${base}/nowhere`);
          assertEquals(response.status, 404);
          assertEquals(await response.json(), { code: "NotFound", message: "No HttpAction routed for /nowhere" });
          response = await fetch(`${base}/hello`, { method: "POST" });
          assertEquals(response.status, 404);
          await response.body?.cancel();
        });
        await t.step(`${origin}: a throwing handler is a 500, and the server keeps serving`, async () => {
          const response = await fetch(`${base}/throw`);
          assertEquals(response.status, 500);
          // Convex's failure body: `[Request ID: <id>] Server Error: <the error>` plus the trace.
          const body = await response.json();
          assert(/^\[Request ID: [0-9a-f]{16}\] Server Error: Uncaught /.test(body.code), JSON.stringify(body));
          assertEquals(await (await fetch(`${base}/hello?who=bob`)).text(), "hello bob");
        });
      }
      await t.step("the failure is in the execution log", async () => {
        const response = await fetch(`${server.url}/api/stream_function_logs?cursor=0`, {
          headers: { Authorization: `Convex ${server.adminKey}` },
        });
        const text = await response.text();
        assert(text.includes("handler exploded"), `log: ${text.slice(0, 2000)}`);
      });
    } finally {
      await app.dispose();
      await server.close();
    }
  },
});
