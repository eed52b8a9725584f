/**
 * The benches' lean HTTP client (scripts/bench/http_load.ts) reads what `Deno.serve` sends: sized and chunked bodies,
 * bodies bigger than its first buffer, and one response after another on the same connection. A bench that misread a
 * response would count a wrong answer or hang instead of measuring.
 */
import { assertEquals, assertRejects } from "./helpers/assert.ts";
import { KeepAliveClient } from "../scripts/bench/http_load.ts";

/** A server that echoes the request (method, path, body) as a sized body, or as chunks under `/chunked/<n>`. */
function startEchoServer(): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const body = await request.text();
    const { pathname } = new URL(request.url);
    const echo = `${request.method} ${pathname} ${request.headers.get("content-type")} ${body}`;
    if (!pathname.startsWith("/chunked/")) return new Response(echo);
    const count = Number(pathname.slice("/chunked/".length));
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < count; i++) controller.enqueue(encoder.encode(`[${i}:${echo}]`));
        controller.close();
      },
    });
    return new Response(stream);
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

Deno.test("the lean client reads sized and chunked responses, one after another on one connection", async () => {
  const server = startEchoServer();
  const client = await KeepAliveClient.connect(server.url);
  try {
    for (let i = 0; i < 3; i++) {
      const sized = await client.postJson("/api/query", `{"n":${i}}`);
      assertEquals(sized, { status: 200, body: `POST /api/query application/json {"n":${i}}` });
      const chunked = await client.postJson("/chunked/3", `"x${i}"`);
      const echo = `POST /chunked/3 application/json "x${i}"`;
      assertEquals(chunked, { status: 200, body: `[0:${echo}][1:${echo}][2:${echo}]` });
    }
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("the lean client reads a response bigger than its first buffer, then a small one", async () => {
  const server = startEchoServer();
  const client = await KeepAliveClient.connect(server.url);
  try {
    const big = "é".repeat(100_000); // 200,000 bytes of UTF-8: the 16 KiB buffer doubles several times
    const response = await client.postJson("/big", JSON.stringify(big));
    assertEquals(response.body, `POST /big application/json ${JSON.stringify(big)}`);
    const chunked = await client.postJson("/chunked/2000", "1");
    assertEquals(
      chunked.body.length,
      Array.from({ length: 2000 }, (_, i) => `[${i}:POST /chunked/2000 application/json 1]`).join("").length,
    );
    assertEquals((await client.postJson("/small", "2")).body, "POST /small application/json 2");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("the lean client fails a call when the server closes the connection, and refuses https", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(1024));
    conn.close(); // no response at all
  })();
  const client = await KeepAliveClient.connect(`http://127.0.0.1:${listener.addr.port}`);
  try {
    await assertRejects(() => client.postJson("/api/query", "{}"), Error, "closed the connection");
  } finally {
    client.close();
    await accepted;
    listener.close();
  }
  await assertRejects(() => KeepAliveClient.connect("https://127.0.0.1:1"), Error, "plain HTTP only");
});
