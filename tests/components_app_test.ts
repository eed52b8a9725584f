/**
 * End to end (issue 11): tests/fixtures/components_app, an app installing seven real npm components unmodified
 * (workpool, rate-limiter, aggregate, sharded-counter, migrations, action-retrier, crons), deployed with the official
 * CLI to the real server process and exercised the way each component's README does, through the official clients
 * (`ConvexHttpClient`, `ConvexClient`): workpool work runs with its onComplete callback, a rate limit refuses the call
 * over the limit, an aggregate's count and sum stay right under concurrent inserts, a sharded counter adds up, a
 * migration runs to completion over many documents, a failing action is retried until it succeeds, a cron registered
 * at runtime fires, a live query over a component's data updates after a component write, a redeploy keeps component
 * data, and the CLI's `run --component` and `data --component` reach a component's functions and tables.
 */
import { BaseConvexClient, ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi, makeFunctionReference } from "convex/server";
import { assert, assertEquals, assertStringIncludes, waitFor as waitForValue } from "./helpers/assert.ts";
import { functionExecution, systemFunctions } from "../src/deploy/mod.ts";
import type { Database, TableInfo } from "../src/database/mod.ts";
import type { LoggedExecution } from "../src/functions/mod.ts";
import { queryKey } from "../src/subscriptions/mod.ts";
import { parseClientMessage } from "../src/sync/mod.ts";
import {
  type ConvexApp,
  createConvexAppFromFixture,
  DEPLOY_ARGS,
  runConvexCli,
  type ServerProcess,
  spawnServer,
} from "./helpers/convex_app.ts";

// ---------------------------------------------------------------------------------------------------------------
// The tools' own pieces, without a server

Deno.test("components tools: the sync protocol carries a component path; absent, null and empty are the app", () => {
  const add = (componentPath: unknown) =>
    parseClientMessage(JSON.stringify({
      type: "ModifyQuerySet",
      baseVersion: 0,
      newVersion: 1,
      modifications: [{ type: "Add", queryId: 0, udfPath: "_system/cli/tables", args: [{}], componentPath }],
    }));
  for (const [sent, parsed] of [[undefined, ""], [null, ""], ["", ""], ["aggregate", "aggregate"]] as const) {
    const message = add(sent);
    assert(message.type === "ModifyQuerySet" && message.modifications[0].type === "Add");
    assertEquals(message.modifications[0].componentPath, parsed);
  }
  const mutation = parseClientMessage(
    JSON.stringify({ type: "Mutation", requestId: 0, udfPath: "public:add", args: [{}], componentPath: "a/b" }),
  );
  assert(mutation.type === "Mutation");
  assertEquals(mutation.componentPath, "a/b");
  let refused = false;
  try {
    add(7);
  } catch {
    refused = true;
  }
  assert(refused, "a non-string componentPath is a protocol error");
});

Deno.test("components tools: a component's query is cached apart from the app's query of the same name", () => {
  const spec = { path: "public:count", args: { name: "x" }, identityJson: null, allowInternal: true };
  assertEquals(queryKey({ ...spec, componentPath: "" }), queryKey(spec));
  assert(queryKey({ ...spec, componentPath: "shardedCounter" }) !== queryKey(spec));
  assert(queryKey({ ...spec, componentPath: "a" }) !== queryKey({ ...spec, componentPath: "b" }));
});

Deno.test("components tools: log entries carry the component path; the app's is null", () => {
  const entry = (componentPath?: string): LoggedExecution => ({
    udfType: "query",
    ...(componentPath === undefined ? {} : { componentPath }),
    displayName: "public:count",
    modulePath: "public.js",
    exportName: "count",
    ok: true,
    logLines: [],
    startedAtMs: 1_000,
    executionTimeMs: 1,
    requestId: "r",
    cursor: 1,
  });
  assertEquals(functionExecution(entry("shardedCounter")).componentPath, "shardedCounter");
  assertEquals(functionExecution(entry()).componentPath, null);
});

Deno.test("components tools: system functions list instances and each namespace's own tables", async () => {
  const table = (name: string, tableNumber: number, componentPath?: string): TableInfo => ({
    name,
    tableNumber,
    indexes: [],
    documentType: null,
    ...(componentPath === undefined ? {} : { componentPath }),
  });
  const database = {
    catalog: {
      version: 1,
      schemaValidation: false,
      tables: [
        table("_scheduled_functions", 1),
        table("scores", 10_001),
        table("counters", 10_002, "shardedCounter"),
        table("_scheduled_functions", 10_003, "shardedCounter"),
        table("btree", 10_004, "aggregate"),
      ],
    },
  } as unknown as Database;
  const instance = (path: string) => ({ path, children: new Map() });
  const host = {
    deployments: {
      environmentVariables: {},
      unmountedComponents: ["old"],
      active: { components: new Map(["", "aggregate", "shardedCounter"].map((path) => [path, instance(path)])) },
    },
    urls: { cloudUrl: "" },
  } as unknown as Parameters<typeof systemFunctions>[0];
  const lookup = systemFunctions(host);
  const context = (componentPath?: string) => ({ database, snapshotTs: 0n, identityJson: null, componentPath });
  const tables = async (componentPath?: string) =>
    ((await lookup("_system/cli/tables")!({}, context(componentPath))) as { page: { name: string }[] }).page
      .map((t) => t.name);
  assertEquals(await tables(), ["scores"]);
  assertEquals(await tables("shardedCounter"), ["counters"]);
  assertEquals(await tables("aggregate"), ["btree"]);
  assertEquals(await tables("missing"), []);
  const list = await lookup("_system/frontend/components:list")!({}, context()) as {
    path: string;
    name: unknown;
    state: string;
  }[];
  assertEquals(list.map((c) => [c.path, c.name, c.state]), [
    ["", null, "active"],
    ["aggregate", "aggregate", "active"],
    ["old", "old", "unmounted"],
    ["shardedCounter", "shardedCounter", "active"],
  ]);
});

// ---------------------------------------------------------------------------------------------------------------
// The fixture app, end to end
// deno-lint-ignore no-explicit-any
const api = anyApi as any;
/** How long background work (workpool, retries, migrations, crons) may take to finish. */
const BACKGROUND_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 200;
/** `ConvexHttpClient` sends mutations one at a time unless told not to queue them. */
const CONCURRENT = { skipQueue: true };

/** Polls `read` until `done` holds for its value; fails with the last value after `timeoutMs`. */
function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  return waitForValue(what, read, done, BACKGROUND_TIMEOUT_MS, POLL_INTERVAL_MS);
}

async function deploy(app: ConvexApp, server: ServerProcess): Promise<string> {
  const result = await runConvexCli(app, DEPLOY_ARGS, server);
  assertEquals(result.code, 0, `deploy failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout + result.stderr;
}

/** What `npx convex data|run --component` uses of `BaseConvexClient` beyond its public types (CLI lib/run.js). */
interface CliSocketClient {
  subscribe(
    name: string,
    args: Record<string, unknown>,
    options: { componentPath?: string },
  ): { queryToken: unknown; unsubscribe(): void };
  setAdminAuth(adminKey: string): void;
  localQueryResultByToken(token: unknown): unknown;
}

function cliView(client: BaseConvexClient): CliSocketClient {
  return client as unknown as CliSocketClient;
}

/** Runs `npx convex <args>` and returns its stdout; a failure fails the test with the CLI's output. */
async function cli(app: ConvexApp, server: ServerProcess, args: string[]): Promise<string> {
  const result = await runConvexCli(app, args, server);
  assertEquals(result.code, 0, `convex ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

Deno.test({
  name: "components app: seven npm components deploy with the official CLI and work as their READMEs say",
  async fn(t) {
    const server = await spawnServer();
    const app = await createConvexAppFromFixture("components_app");
    const client = new ConvexHttpClient(server.url);
    try {
      const output = await deploy(app, server);
      await t.step("the first deploy installs every component", () => {
        for (const name of ["emailWorkpool", "rateLimiter", "aggregate", "shardedCounter", "migrations"]) {
          assertStringIncludes(output, name);
        }
      });

      // Early, while the log holds fewer entries than one poll returns.
      await t.step("the function log names the component of each execution", async () => {
        await cli(app, server, ["run", "--component", "shardedCounter", "public:count", '{"name":"none"}']);
        await client.mutation(api.counter.add, { key: "logged", amount: 1 });
        const response = await fetch(`${server.url}/api/stream_function_logs?cursor=0`, {
          headers: { Authorization: `Convex ${server.adminKey}` },
        });
        assertEquals(response.status, 200);
        const { entries } = await response.json() as { entries: { identifier: string; componentPath: unknown }[] };
        const counted = entries.filter((entry) => entry.identifier === "public.js:count");
        assert(counted.some((entry) => entry.componentPath === "shardedCounter"), JSON.stringify(counted));
        assert(entries.some((entry) => entry.identifier === "counter.js:add" && entry.componentPath === null));
      });

      await t.step("workpool: enqueued work runs and its onComplete callback records the outcome", async () => {
        await Promise.all(
          ["a@x.test", "b@x.test", "c@x.test"].map((to) => client.mutation(api.emails.enqueue, { to })),
        );
        const sent = await waitFor(
          "three completed emails",
          () => client.query(api.emails.sent, {}) as Promise<{ to: string; outcome: string }[]>,
          (rows) => rows.length >= 3,
        );
        assertEquals(sent.map((row) => row.to).sort(), ["a@x.test", "b@x.test", "c@x.test"]);
        assert(sent.every((row) => row.outcome === "success"), JSON.stringify(sent));
      });

      await t.step("rate limiter: the call over the bucket's capacity is refused", async () => {
        const results: { ok: boolean; retryAfter: number | null }[] = [];
        for (let i = 0; i < 4; i++) results.push(await client.mutation(api.messages.send, { user: "ann" }));
        assertEquals(results.map((r) => r.ok), [true, true, true, false]);
        assert(results[3].retryAfter !== null && results[3].retryAfter > 0, JSON.stringify(results[3]));
        // Another key has its own bucket.
        assertEquals((await client.mutation(api.messages.send, { user: "bob" })).ok, true);
      });

      await t.step("aggregate: count and sum stay right under concurrent inserts", async () => {
        const scores = Array.from({ length: 30 }, (_, i) => i + 1);
        await Promise.all(
          scores.map((score) => client.mutation(api.scores.add, { player: `p${score}`, score }, CONCURRENT)),
        );
        const stats = await client.query(api.scores.stats, {});
        assertEquals(stats, { count: 30, sum: scores.reduce((a, b) => a + b, 0) });
      });

      await t.step("sharded counter: concurrent adds add up", async () => {
        await Promise.all(
          Array.from({ length: 40 }, () => client.mutation(api.counter.add, { key: "visits", amount: 1 }, CONCURRENT)),
        );
        await client.mutation(api.counter.add, { key: "visits", amount: 10 });
        assertEquals(await client.query(api.counter.count, { key: "visits" }), 50);
      });

      await t.step("migrations: a batched migration runs to completion over many documents", async () => {
        for (let i = 0; i < 4; i++) await client.mutation(api.migrations.seed, { count: 150 });
        assertEquals(await client.query(api.migrations.unmigrated, {}), 600);
        await client.mutation(api.migrations.start, {});
        const [status] = await waitFor(
          "the migration to succeed",
          () => client.query(api.migrations.status, {}) as Promise<{ state: string; processed: number }[]>,
          (statuses) => statuses[0]?.state === "success" || statuses[0]?.state === "failed",
        );
        assertEquals(status.state, "success", JSON.stringify(status));
        assertEquals(status.processed, 600);
        assertEquals(await client.query(api.migrations.unmigrated, {}), 0);
      });

      await t.step("action retrier: an action failing twice is retried until it succeeds", async () => {
        const runId = await client.mutation(api.retries.kickoff, { key: "flaky-1", failures: 2 });
        const status = await waitFor(
          "the retried run to complete",
          () => client.query(api.retries.status, { runId }) as Promise<{ type: string; result?: unknown }>,
          (value) => value.type === "completed",
        );
        assertEquals(status.result, { type: "success", returnValue: 3 });
      });

      await t.step("crons: a cron registered at runtime fires", async () => {
        const cronId = await client.mutation(api.schedules.register, { ms: 1_000 });
        assert(typeof cronId === "string", `register returned ${JSON.stringify(cronId)}`);
        await waitFor("two ticks", () => client.query(api.schedules.ticks, {}) as Promise<number>, (n) => n >= 2);
      });

      await t.step("a live query over a component's data updates after a component write", async () => {
        const live = new ConvexClient(server.url);
        try {
          const seen: number[] = [];
          let notify: () => void = () => {};
          const unsubscribe = live.onUpdate(api.counter.count, { key: "live" }, (value: number) => {
            seen.push(value);
            notify();
          });
          const next = (predicate: (values: number[]) => boolean) =>
            new Promise<void>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`live query saw ${JSON.stringify(seen)}`)), 20_000);
              notify = () => {
                if (predicate(seen)) {
                  clearTimeout(timer);
                  resolve();
                }
              };
              notify();
            });
          await next((values) => values.includes(0));
          await client.mutation(api.counter.add, { key: "live", amount: 5 });
          await next((values) => values.includes(5));
          await client.mutation(api.counter.add, { key: "live", amount: 2 });
          await next((values) => values.includes(7));
          unsubscribe();
        } finally {
          await live.close();
        }
      });

      await t.step("npx convex run --component calls a component's function (with the admin key)", async () => {
        const counted = await cli(app, server, [
          "run",
          "--component",
          "shardedCounter",
          "public:count",
          '{"name":"visits"}',
        ]);
        assertEquals(counted.trim(), "50");
        const stats = JSON.parse(
          await cli(app, server, ["run", "--component", "aggregate", "btree:aggregateBetween", "{}"]),
        );
        assertEquals([stats.count, stats.sum], [30, 465]);
        // Without the admin key a component's function is out of reach.
        const response = await fetch(`${server.url}/api/function`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ path: "public:count", args: { name: "visits" }, componentPath: "shardedCounter" }),
        });
        assertEquals(response.status, 403);
        await response.body?.cancel();
        const wrong = await runConvexCli(app, ["run", "--component", "shardedCounter", "public:nope", "{}"], server);
        assertEquals(wrong.code, 1);
        assertStringIncludes(wrong.stdout + wrong.stderr, "public:nope");
      });

      await t.step("over WebSocket, a component's query needs the admin key and then follows its data", async () => {
        const results: { value?: unknown; error?: string }[] = [];
        let token: unknown = null;
        let changed: () => void = () => {};
        const base = new BaseConvexClient(server.url, (tokens) => {
          if (!(tokens as unknown[]).includes(token)) return;
          try {
            results.push({ value: cliView(base).localQueryResultByToken(token) });
          } catch (error) {
            results.push({ error: String(error) });
          }
          changed();
        }, { unsavedChangesWarning: false });
        const next = (predicate: () => boolean) =>
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`socket saw ${JSON.stringify(results)}`)), 20_000);
            changed = () => {
              if (predicate()) {
                clearTimeout(timer);
                resolve();
              }
            };
            changed();
          });
        try {
          const subscription = cliView(base).subscribe("public:count", { name: "visits" }, {
            componentPath: "shardedCounter",
          });
          token = subscription.queryToken;
          await next(() => results.some((r) => r.error?.includes("admin key")));
          cliView(base).setAdminAuth(server.adminKey);
          await next(() => results.some((r) => r.value === 50));
          await client.mutation(api.counter.add, { key: "visits", amount: 0.5 });
          await next(() => results.some((r) => r.value === 50.5));
          await client.mutation(api.counter.add, { key: "visits", amount: -0.5 });
          await next(() => results.at(-1)?.value === 50);
          subscription.unsubscribe();
          // The function list the CLI shows for a wrong name is the component's own.
          const spec = cliView(base).subscribe("_system/cli/modules:apiSpec", {}, { componentPath: "shardedCounter" });
          token = spec.queryToken;
          await next(() => Array.isArray(results.at(-1)?.value));
          const identifiers = (results.at(-1)!.value as { identifier?: string }[]).map((fn) => fn.identifier);
          assert(identifiers.includes("public.js:count"), identifiers.join(","));
          assert(!identifiers.some((identifier) => identifier?.startsWith("counter.js:")), identifiers.join(","));
          spec.unsubscribe();
        } finally {
          await base.close();
        }
      });

      await t.step("npx convex data --component lists a component's tables and documents", async () => {
        const tables = await cli(app, server, ["data", "--component", "shardedCounter"]);
        assertEquals(tables.trim().split("\n"), ["counters"]);
        const rows = await cli(app, server, ["data", "--component", "shardedCounter", "counters", "--format", "jsonl"]);
        const counters = rows.trim().split("\n").map((line) => JSON.parse(line) as { name: string; value: number });
        assertEquals(
          counters.filter((row) => row.name === "visits").reduce((sum, row) => sum + row.value, 0),
          50,
        );
        // The app's tables are not the component's.
        const appTables = (await cli(app, server, ["data"])).trim().split("\n");
        assert(appTables.includes("scores") && !appTables.includes("counters"), appTables.join(","));
      });

      await t.step("the component list names every instance", async () => {
        const admin = new ConvexHttpClient(server.url);
        (admin as unknown as { setAdminAuth(key: string): void }).setAdminAuth(server.adminKey);
        const listComponents = makeFunctionReference<"query", Record<string, never>, { path: string }[]>(
          "_system/frontend/components:list",
        );
        const list = await admin.query(listComponents, {});
        const paths = list.map((component) => component.path);
        for (const path of ["", "emailWorkpool", "aggregate", "shardedCounter", "crons", "actionRetrier"]) {
          assert(paths.includes(path), `${path} missing from ${paths.join(",")}`);
        }
      });

      await t.step("a redeploy keeps component data", async () => {
        await deploy(app, server);
        assertEquals(await client.query(api.counter.count, { key: "visits" }), 50);
        assertEquals(await client.query(api.scores.stats, {}), { count: 30, sum: 465 });
        await client.mutation(api.counter.add, { key: "visits", amount: 1 });
        assertEquals(await client.query(api.counter.count, { key: "visits" }), 51);
      });
    } finally {
      await app.dispose();
      await server.close();
    }
  },
});
