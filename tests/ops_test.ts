/**
 * Operator-facing details: what `GET /` tells someone who opens the URL, the bounded endpoint labels of the metrics,
 * the JSON log line shape, and `--log-format` parsing.
 */
import { createApiApp, type HttpDeps } from "../src/http/mod.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "./helpers/assert.ts";
import { endpointOf } from "../src/server/observe.ts";
import { jsonLine } from "../src/server/log.ts";
import { parseCommandLine, UsageError } from "../src/server/config.ts";

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

Deno.test("metrics endpoint labels: versions and IDs folded, HTTP actions one endpoint", () => {
  assertEquals(endpointOf("api", "/api/mutation"), "/api/mutation");
  assertEquals(endpointOf("api", "/api/1.48.0/sync"), "/api/:version/sync");
  assertEquals(endpointOf("api", "/api/storage/kg2h4fk5v3m0q1w2e3r4t5y6u7i8o9p0"), "/api/storage/:id");
  assertEquals(endpointOf("api", "/http/anything/the/user/chose"), "http_action");
  assertEquals(endpointOf("site", "/webhook/123"), "http_action");
  assertEquals(endpointOf("api", "/dashboard/assets/app.js"), "/dashboard");
  assertEquals(endpointOf("api", "/a/b/c/d/e"), "/a/b/c");
  assertEquals(endpointOf("api", "/"), "/");
});

Deno.test("json log lines: ts, level and msg first, fields after, bigints as strings", () => {
  const line = jsonLine("error", "function executed", { requestId: "r1", ts2: 5n });
  const parsed = JSON.parse(line);
  assertEquals(Object.keys(parsed).slice(0, 3), ["ts", "level", "msg"]);
  assertEquals(parsed.level, "error");
  assertEquals(parsed.requestId, "r1");
  assertEquals(parsed.ts2, "5");
  assert(!line.includes("\n"));
  const long = JSON.parse(jsonLine("info", "x".repeat(100_000), {}));
  assert(long.msg.length < 20_000, "messages are cut");
});

Deno.test("--log-format: text by default, json when asked, anything else a usage error", () => {
  const serve = (args: string[]) => parseCommandLine(["serve", ...args], () => undefined);
  const config = (args: string[]) => {
    const command = serve(args);
    assert(command.kind === "serve");
    return command.config;
  };
  assertEquals(config([]).logFormat, "text");
  assertEquals(config(["--log-format", "json"]).logFormat, "json");
  const error = assertThrows(() => serve(["--log-format", "yaml"]), UsageError);
  assertStringIncludes(error.message, "--log-format");
});
