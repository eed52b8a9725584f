/**
 * Components at push (issue 11): the official CLI pushes an app with a local component and the fixture app with seven
 * npm components; bad component trees are refused with the old code serving; each instance's tables are a namespace
 * of their own at the database level; a redeploy keeps component data.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./helpers/assert.ts";
import {
  type ConvexApp,
  createConvexApp,
  createConvexAppFromFixture,
  DEPLOY_ARGS,
  deployApp,
  runConvexCli,
  startTestDeployment,
  type TestDeployment,
} from "./helpers/convex_app.ts";
import { DeploymentStore } from "../src/deploy/mod.ts";

const APP: Record<string, string> = {
  "convex.config.ts": `
import { defineApp } from "convex/server";
import { v } from "convex/values";
import tally from "./tally/convex.config";
const app = defineApp({ env: { GREETING: v.optional(v.string()) } });
app.use(tally, { env: { MODE: "fast", GREETING: app.env.GREETING } });
export default app;
`,
  "schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ items: defineTable({ label: v.string() }) });
`,
  "items.ts": `
import { query } from "./_generated/server";
export const version = query({ args: {}, handler: async () => 1 });
`,
  "tally/convex.config.ts": `
import { defineComponent } from "convex/server";
import { v } from "convex/values";
export default defineComponent("tally", {
  env: { MODE: v.union(v.literal("fast"), v.literal("slow")), GREETING: v.optional(v.string()) },
});
`,
  "tally/schema.ts": `
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";
export default defineSchema({ items: defineTable({ n: v.number() }).index("by_n", ["n"]) });
`,
  "tally/lib.ts": `
import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const add = mutation({ args: { n: v.number() }, handler: async (ctx, { n }) => await ctx.db.insert("items", { n }) });
export const count = query({ args: {}, handler: async (ctx) => (await ctx.db.query("items").collect()).length });
`,
};

async function deploy(app: ConvexApp, deployment: TestDeployment) {
  const result = await deployApp(app, deployment);
  return result.stdout + result.stderr;
}

async function appVersion(deployment: TestDeployment): Promise<number> {
  const result = await deployment.backend.executor.call({
    path: "items:version",
    args: {},
    identityJson: null,
    allowInternal: false,
  });
  if (!result.ok) throw new Error(result.errorMessage);
  return JSON.parse(result.valueJson);
}

Deno.test({
  name: "an app with a local component pushes; namespaces are isolated; bad trees are refused; redeploy keeps data",
  async fn(t) {
    const deployment = await startTestDeployment();
    const app = await createConvexApp(APP);
    const database = deployment.backend.database;
    try {
      await t.step("push installs the component with its own tables and modules", async () => {
        const output = await deploy(app, deployment);
        assertMatch(output, /Installed component tally/);
        const active = deployment.backend.deployments.active!;
        assertEquals([...active.components.keys()], ["", "tally"]);
        const tally = active.components.get("tally")!;
        assert(tally.functions.has("lib.js:add"), "the component's functions are indexed");
        assert(!active.functions.has("lib.js:add"), "the app does not see them");
        assertEquals([...active.components.get("")!.children], [["tally", "tally"]]);
        await Deno.stat(`${tally.modulesDir}/lib.js`);
        const appItems = database.catalogView.tableByName("items")!;
        const tallyItems = database.catalogView.forComponent("tally").tableByName("items")!;
        assert(appItems.tableNumber !== tallyItems.tableNumber, "same name, different tables");
        assert(tallyItems.indexes.some((index) => index.name === "items.by_n" && index.ready));
        assert(!appItems.indexes.some((index) => index.name === "items.by_n"));
        const tallySystem = database.catalogView.forComponent("tally").tableByName("_scheduled_functions");
        assert(tallySystem, "the instance has its own _scheduled_functions");
        assert(database.catalogView.forComponent("tally").tableByName("_storage"), "and its own _storage");
      });

      await t.step("the component's env is what its parent binds, following the deployment's env vars", async () => {
        const deployments = deployment.backend.deployments;
        assertEquals(deployments.active!.components.get("tally")!.env, { MODE: "fast" });
        assertEquals(deployments.active!.components.get("")!.env, {});
        await deployments.updateEnvironment([{ name: "GREETING", value: "hello" }]);
        assertEquals(deployments.active!.components.get("tally")!.env, { MODE: "fast", GREETING: "hello" });
        await deployments.updateEnvironment([{ name: "GREETING", value: null }]);
        assertEquals(deployments.active!.components.get("tally")!.env, { MODE: "fast" });
      });

      let tallyId = "";
      await t.step("an ID of one namespace is unknown in the other", async () => {
        const { value } = await database.runSystemTransaction((tx) => tx.insert("items", { n: 7 }), {
          componentPath: "tally",
        });
        tallyId = value;
        assertEquals(await database.readSnapshot().get(tallyId), null);
        assert(await database.readSnapshot(undefined, { componentPath: "tally" }).get(tallyId));
        const host = database.begin("query");
        assertEquals(await host.syscall("1.0/get", JSON.stringify({ id: tallyId })), "null");
        const got = JSON.parse(await host.syscall("1.0/get", JSON.stringify({ id: tallyId }), "tally"));
        assertEquals(got.n, 7);
        // A mutation's syscalls in the component's namespace write its table, checked against its own schema.
        const mutation = database.begin("mutation");
        const inserted = JSON.parse(
          await mutation.syscall("1.0/insert", JSON.stringify({ table: "items", value: { n: 8 } }), "tally"),
        );
        const refused = await mutation.syscall("1.0/insert", JSON.stringify({ table: "items", value: { n: 9 } }))
          .then(() => null, (error: Error) => error.message);
        assertMatch(refused ?? "", /schema/i);
        await database.commit(mutation.outcome());
        assertEquals(await database.readSnapshot().get(inserted._id), null);
        assert(await database.readSnapshot(undefined, { componentPath: "tally" }).get(inserted._id));
        // The app's `items` does not hold the component's document.
        const appRows = await database.readSnapshot().scan("items.by_creation_time", { limit: 10 });
        assertEquals(appRows.length, 0);
      });

      await t.step("bad component trees are refused and the old code keeps serving", async () => {
        const bad: [Record<string, string>, RegExp][] = [
          [{
            "convex.config.ts": `
import { defineApp } from "convex/server";
import tally from "./tally/convex.config";
const app = defineApp();
app.use(tally);
app.use(tally, { name: "tally" });
export default app;
`,
          }, /tally/],
          [{ "tally/convex.config.ts": `export default { notADefinition: true };` }, /tally|definition/i],
          [
            { "convex.config.ts": APP["convex.config.ts"].replace('MODE: "fast"', 'MODE: "medium"') },
            /InvalidComponentEnv.*MODE/,
          ],
        ];
        for (const [files, reason] of bad) {
          await app.write(files);
          const result = await runConvexCli(app, DEPLOY_ARGS, deployment);
          const output = result.stdout + result.stderr;
          assert(result.code !== 0, `the push should fail:\n${output}`);
          assertMatch(output, reason);
          await app.write(Object.fromEntries(Object.keys(files).map((path) => [path, APP[path]])));
          assertEquals(await appVersion(deployment), 1);
          assert(deployment.backend.deployments.active!.components.has("tally"));
        }
      });

      await t.step("a push naming a missing child or with a definition cycle is refused", async () => {
        const module = (source: string) => ({ path: "convex.config.js", source, environment: "isolate" });
        const component = (definitionPath: string, dependencies: string[]) => ({
          definitionPath,
          definition: module("export default {};"),
          dependencies,
          schema: null,
          functions: [],
        });
        const push = async (dependencies: string[], componentDefinitions: unknown[]) => {
          const response = await fetch(`${deployment.url}/api/deploy2/start_push`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              adminKey: deployment.adminKey,
              dryRun: false,
              functions: "convex/",
              appDefinition: {
                definition: module("export default {};"),
                dependencies,
                schema: null,
                changedModules: [],
                unchangedModuleHashes: [],
              },
              componentDefinitions,
              nodeDependencies: [],
            }),
          });
          return { status: response.status, text: await response.text() };
        };
        const missing = await push(["../missing"], []);
        assertEquals(missing.status, 400);
        assertMatch(missing.text, /MissingComponentDefinition/);
        const cycle = await push(["a"], [component("a", ["b"]), component("b", ["a"])]);
        assertEquals(cycle.status, 400);
        assertMatch(cycle.text, /CyclicImport/);
        assertEquals(await appVersion(deployment), 1);
      });

      await t.step("redeploying keeps the component's data", async () => {
        await app.write({ "items.ts": APP["items.ts"].replace("=> 1", "=> 2") });
        await deploy(app, deployment);
        assertEquals(await appVersion(deployment), 2);
        const snapshot = database.readSnapshot(undefined, { componentPath: "tally" });
        assertEquals(JSON.parse((await snapshot.get(tallyId))!.json).n, 7);
      });

      await t.step("a store reopened on the same data serves the same instances", async () => {
        const before = deployment.backend.deployments.active!;
        // Modules live at <dataDir>/modules/<hash>.
        const dataDir = before.dir.split("/").slice(0, -2).join("/");
        const reopened = await DeploymentStore.open(database, deployment.backend.pool, dataDir);
        const after = reopened.active!;
        assertEquals([...after.components.keys()], [...before.components.keys()]);
        assertEquals(after.components.get("tally")!.modulesDir, before.components.get("tally")!.modulesDir);
        assert(after.components.get("tally")!.functions.has("lib.js:count"));
      });

      await t.step("dropping the component unmounts it and keeps its data; using it again remounts it", async () => {
        await app.write({
          "convex.config.ts": `import { defineApp } from "convex/server";\nexport default defineApp();\n`,
        });
        assertMatch(await deploy(app, deployment), /Unmounted component tally/);
        assertEquals([...deployment.backend.deployments.active!.components.keys()], [""]);
        await app.write({ "convex.config.ts": APP["convex.config.ts"] });
        assertMatch(await deploy(app, deployment), /Remounted component tally/);
        const snapshot = database.readSnapshot(undefined, { componentPath: "tally" });
        assertEquals(JSON.parse((await snapshot.get(tallyId))!.json).n, 7);
      });
    } finally {
      await app.dispose();
      await deployment.close();
    }
  },
});

Deno.test({
  name: "the fixture app with seven npm components pushes through the official CLI",
  async fn() {
    const deployment = await startTestDeployment();
    const app = await createConvexAppFromFixture("components_app");
    try {
      const output = await deploy(app, deployment);
      assertStringIncludes(output, "Installed component");
      const paths = [...deployment.backend.deployments.active!.components.keys()];
      for (const path of ["", "aggregate", "emailWorkpool", "emailWorkpool/batchWorker"]) {
        assert(paths.includes(path), `instance ${path} in ${paths.join(", ")}`);
      }
      // A second push of the same code keeps every instance.
      await deploy(app, deployment);
      assertEquals([...deployment.backend.deployments.active!.components.keys()], paths);
    } finally {
      await app.dispose();
      await deployment.close();
    }
  },
});
