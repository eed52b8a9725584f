/**
 * Issue 13, deploy analysis as Convex does it, pushed with the official CLI: imports and `process.env` reads are what
 * the code does (a real lexer, an evaluation), never what its comments or strings mention; an `httpAction` exported
 * from an ordinary module is left out of the function list.
 */
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { scanSpecifiers } from "../src/runtime/specifiers.ts";
import { ModuleLoadError } from "../src/runtime/errors.ts";
import { createConvexApp, DEPLOY_ARGS, runConvexCli, startTestDeployment } from "./helpers/convex_app.ts";

const APP: Record<string, string> = {
  // Texts that mention imports of packages (kept by esbuild: a legal comment, template literals used at run time).
  "docs.ts": `
/*! @license Example
 * import { Password } from "@convex-dev/auth/providers/Password";
 * import {
 *   convexAuth,
 * } from "@convex-dev/auth/server";
 */
import { query } from "./_generated/server";
const USAGE = \`
import { Migrations } from "@convex-dev/migrations";
export * from "some-package";
\`;
const DYNAMIC = "await import('left-pad')";
export const usage = query({ args: {}, handler: async () => USAGE.trim() + " " + DYNAMIC });
`,
  // The Convex docs' pattern: an httpAction defined in an ordinary module, routed from http.ts.
  "handlers.ts": `
import { httpAction, query } from "./_generated/server";
export const hello = httpAction(async () => new Response("hello from handlers"));
export const ping = query({ args: {}, handler: async () => "pong" });
`,
  "http.ts": `
import { httpRouter } from "convex/server";
import { hello } from "./handlers";
const http = httpRouter();
http.route({ path: "/hello", method: "GET", handler: hello });
export default http;
`,
  // A string naming process.env is no read; a function reading one that is never called reads nothing.
  "auth.config.ts": `
/*! Set process.env.AUTH0_DOMAIN and process.env["AUTH0_CLIENT_ID"] in the dashboard. */
const NOTE = "process.env.AUTH0_DOMAIN is documented elsewhere";
export function later() { return process.env.NEVER_READ_AT_LOAD; }
export default {
  providers: [{ domain: "https://issuer.example.com/", applicationID: NOTE.length > 0 ? "convex" : "x" }],
};
`,
};

Deno.test({
  name: "fidelity: deploy analysis decides imports and env reads from the code, and skips exported httpActions",
  async fn(t) {
    const deployment = await startTestDeployment({ functionRoutes: true });
    const app = await createConvexApp(APP);
    try {
      await t.step("a push whose comments and strings mention imports and process.env succeeds", async () => {
        const result = await runConvexCli(app, DEPLOY_ARGS, deployment);
        assertEquals(result.code, 0, `push failed:\n${result.stdout}\n${result.stderr}`);
      });

      await t.step("the exported httpAction serves through http.ts and is not a function", async () => {
        const response = await fetch(`${deployment.url}/http/hello`);
        assertEquals(await response.text(), "hello from handlers");
        const call = await fetch(`${deployment.url}/api/query`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ path: "handlers:hello", args: {}, format: "json" }),
        });
        const body = await call.json();
        assertEquals(body.status, "error");
        const ping = await fetch(`${deployment.url}/api/query`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ path: "handlers:ping", args: {}, format: "json" }),
        });
        assertEquals((await ping.json()).value, "pong");
      });

      await t.step("the module's strings still run as written", async () => {
        const call = await fetch(`${deployment.url}/api/query`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ path: "docs:usage", args: {}, format: "json" }),
        });
        assertMatch((await call.json()).value, /@convex-dev\/migrations[\s\S]*left-pad/);
      });

      await t.step("an auth config that reads an unset variable at load time is still refused", async () => {
        await app.write({
          "auth.config.ts":
            `export default { providers: [{ domain: process.env.AUTH0_DOMAIN ?? "https://x.example.com/",` +
            ` applicationID: "convex" }] };\n`,
        });
        const result = await runConvexCli(app, DEPLOY_ARGS, deployment);
        assert(result.code !== 0, "the push should fail");
        assertMatch(result.stdout + result.stderr, /AUTH0_DOMAIN/);
        assertMatch(result.stdout + result.stderr, /npx convex env set .*AUTH0_DOMAIN/);
      });
    } finally {
      await app.dispose();
      await deployment.close();
    }
  },
});

Deno.test("fidelity: the specifier scan ignores comments, strings, templates and regexes, and reports real imports", () => {
  const source = [
    '/** import { a } from "pkg-in-jsdoc"; */',
    "/*",
    " * import {",
    " *   b,",
    ' * } from "multi-line-in-comment";',
    " */",
    '// import c from "line-comment"',
    "const s = 'import d from \"in-string\"';",
    "const t = `",
    'import e from "in-template";`;',
    'const r = /import f from "in-regex"/;',
    'import { g } from "./_deps/G.js";',
    'export * from "../h.js";',
    'const i = await import("./lazy.js");',
    "const j = import(computed);",
    'import "real-bare";',
    "const k = await import(`npm:left-pad`);",
  ].join("\n");
  assertEquals(scanSpecifiers(source, "a.js").map((found) => `${found.specifier}@${found.line}`), [
    "./_deps/G.js@12",
    "../h.js@13",
    "./lazy.js@14",
    "real-bare@16",
    "npm:left-pad@17",
  ]);
  let error: unknown = null;
  try {
    scanSpecifiers("const x = `unterminated", "bad.js");
  } catch (caught) {
    error = caught;
  }
  assert(error instanceof ModuleLoadError, "an unparsable module is refused");
  assertMatch((error as Error).message, /bad\.js.*cannot be parsed/);
});
