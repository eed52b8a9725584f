/** The HTTP skeleton in-process: health check, error shapes, body limits, the site app under `/http/`. */
import { createApiApp, createSiteApp, type HttpDeps, HttpError } from "../src/http/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";

const DEPS: HttpDeps = {
  version: "denvex test",
  instanceName: "denvex",
  adminKey: `denvex|${"00".repeat(32)}`,
  limits: { apiMaxRequestBodyBytes: 1024, siteMaxRequestBodyBytes: 512 },
};

function request(path: string, init?: RequestInit): Request {
  return new Request(`http://denvex.test${path}`, init);
}

/** A body without Content-Length, as a chunked upload arrives. */
function streamedBody(totalBytes: number, chunkBytes = 100): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= totalBytes) return controller.close();
      const size = Math.min(chunkBytes, totalBytes - sent);
      sent += size;
      controller.enqueue(new Uint8Array(size));
    },
  });
}

Deno.test("GET /version answers 200 with the version text", async () => {
  const response = await createApiApp(DEPS).fetch(request("/version"));
  assertEquals(response.status, 200);
  assertEquals(await response.text(), "denvex test");
});

Deno.test("unknown routes are JSON 404s on both origins, and /http/* reaches the site app", async () => {
  for (
    const [app, path] of [[createApiApp(DEPS), "/nope"], [createApiApp(DEPS), "/http/x"], [
      createSiteApp(DEPS),
      "/x",
    ]] as const
  ) {
    const response = await app.fetch(request(path, { method: "POST", body: "{}" }));
    assertEquals(response.status, 404, path);
    assertEquals(await response.json(), { code: "NotFound", message: `No route for POST ${path}` });
  }
  // /version belongs to the user's HTTP router on the site origin.
  assertEquals((await createSiteApp(DEPS).fetch(request("/version"))).status, 404);
});

Deno.test("thrown errors become JSON {code, message}: HttpError as given, bad JSON 400, the rest 500", async () => {
  const app = createApiApp(DEPS);
  app.get("/teapot", () => {
    throw new HttpError(418, "Teapot", "short and stout");
  });
  app.post("/json", async (c) => c.json(await c.req.json()));
  app.get("/boom", () => {
    throw new Error("secret internal detail");
  });

  const teapot = await app.fetch(request("/teapot"));
  assertEquals(teapot.status, 418);
  assertEquals(await teapot.json(), { code: "Teapot", message: "short and stout" });

  const badJson = await app.fetch(request("/json", { method: "POST", body: "{not json" }));
  assertEquals(badJson.status, 400);
  assertEquals((await badJson.json()).code, "BadJsonBody");

  const consoleError = console.error;
  console.error = () => {}; // the 500 is logged on purpose; keep the test output clean
  try {
    const boom = await app.fetch(request("/boom"));
    assertEquals(boom.status, 500);
    const body = await boom.json();
    assertEquals(body.code, "InternalServerError");
    assert(!body.message.includes("secret"), "internal details stay in the server log");
  } finally {
    console.error = consoleError;
  }
});

Deno.test("request bodies over the limit are 413 with a clear message, declared or streamed", async () => {
  const app = createApiApp(DEPS);
  app.post("/echo", async (c) => c.text(`${(await c.req.arrayBuffer()).byteLength}`));

  const fits = await app.fetch(request("/echo", { method: "POST", body: new Uint8Array(1024) }));
  assertEquals(fits.status, 200);
  assertEquals(await fits.text(), "1024");

  const declared = await app.fetch(request("/echo", { method: "POST", body: new Uint8Array(1025) }));
  assertEquals(declared.status, 413);
  assertEquals(await declared.json(), {
    code: "PayloadTooLarge",
    message: "Request body is larger than the limit of 1 KiB",
  });

  const streamed = await app.fetch(request("/echo", { method: "POST", body: streamedBody(5000) }));
  assertEquals(streamed.status, 413);
  assertEquals((await streamed.json()).code, "PayloadTooLarge");

  // The site origin has its own, smaller limit, also under /http/ on the API origin.
  const site = await app.fetch(request("/http/upload", { method: "POST", body: new Uint8Array(600) }));
  assertEquals(site.status, 413);
  assertEquals((await site.json()).message, "Request body is larger than the limit of 512 bytes");
});
