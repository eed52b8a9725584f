/** Operator-facing details of the API origin: what `GET /` tells someone who opens the URL. */
import { createApiApp, type HttpDeps } from "../src/http/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";

const DEPS: HttpDeps = {
  version: "denvex 9.9.9",
  instanceName: "denvex",
  adminKey: `denvex|${"00".repeat(32)}`,
};

Deno.test("GET / says this is a denvex deployment and its version", async () => {
  const response = await createApiApp(DEPS).fetch(new Request("http://denvex.test/"));
  assertEquals(response.status, 200);
  assert(response.headers.get("content-type")?.startsWith("text/plain"));
  const text = await response.text();
  assert(text.startsWith("denvex 9.9.9\n"), text);
  assert(text.includes("denvex deployment"), text);
});
