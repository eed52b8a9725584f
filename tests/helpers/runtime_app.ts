/**
 * Test helper: a tiny Convex app, bundled the way `npx convex deploy` bundles it (convex-compat.md §5.3), turned into
 * the ModuleConfig records the CLI would push.
 */
import * as esbuild from "esbuild";
import { posix } from "node:path";
import { fileURLToPath } from "node:url";
import { type ModuleConfig, writeDeploymentModules } from "../../src/runtime/mod.ts";
import { openPersistence, type Persistence } from "../../src/persistence/mod.ts";
import { type Database, openDatabase } from "../../src/database/mod.ts";

const NODE_MODULES = fileURLToPath(new URL("../../node_modules", import.meta.url));

/** The app's `convex/` folder: path → TypeScript source. */
export const APP_FILES: Record<string, string> = {
  "_generated/server.ts": `
    export {
      queryGeneric as query, mutationGeneric as mutation, actionGeneric as action,
      internalQueryGeneric as internalQuery, internalMutationGeneric as internalMutation,
      internalActionGeneric as internalAction, httpActionGeneric as httpAction,
    } from "convex/server";
  `,
  "messages.ts": `
    import { query, mutation, action, internalQuery } from "./_generated/server";
    import { anyApi } from "convex/server";
    import { ConvexError, v } from "convex/values";

    export const hello = query({
      args: { name: v.string() },
      returns: v.string(),
      handler: async (_ctx, { name }) => "hello " + name,
    });
    export const logs = query({
      args: {},
      handler: async () => {
        console.log("hi", 1);
        console.info({ a: 1, b: "x" });
        console.warn([1, "two"]);
        console.error("bad", 2n);
        return null;
      },
    });
    export const fails = query({
      args: {},
      handler: async () => {
        throw new ConvexError({ code: "BAD", n: 3n });
      },
    });
    export const throwsPlain = query({ args: {}, handler: async () => { throw new Error("plain failure"); } });
    export const spin = query({ args: {}, handler: async () => { for (;;) {} } });
    export const hog = query({
      args: {},
      handler: async () => {
        const hoard: number[][] = [];
        for (;;) hoard.push(new Array(100_000).fill(hoard.length));
      },
    });
    export const readHostname = query({ args: {}, handler: async () => await Deno.readTextFile("/etc/hostname") });
    export const environment = query({
      args: {},
      handler: async () => {
        let denoEnv: string;
        try {
          denoEnv = String(Deno.env.get("HOME"));
        } catch (error) {
          denoEnv = (error as Error).name;
        }
        return { processEnv: process.env, denoEnv };
      },
    });
    export const tryFetch = query({
      args: {},
      handler: async () => {
        await fetch("http://127.0.0.1:9/");
        return "fetched";
      },
    });
    export const tryTimer = query({ args: {}, handler: async () => { setTimeout(() => {}, 1); return "timer"; } });
    export const clock = query({
      args: {},
      handler: async () => {
        const first = Date.now();
        let spins = 0;
        while (performance.now() < 0 || spins < 200_000) spins++;
        return { first, second: new Date().getTime(), random: Math.random() };
      },
    });
    export const list = query({ args: {}, handler: async (ctx) => await ctx.db.query("messages").collect() });
    export const count = query({
      args: {},
      handler: async (ctx) => (await ctx.db.query("messages").collect()).length,
    });
    export const getMany = query({
      args: { id: v.string(), times: v.number() },
      handler: async (ctx, { id, times }) => {
        let found = 0;
        for (let i = 0; i < times; i++) if (await ctx.db.get(id as any)) found++;
        return found;
      },
    });
    export const send = mutation({
      args: { body: v.string() },
      handler: async (ctx, { body }) => await ctx.db.insert("messages", { body }),
    });
    export const sendMany = mutation({
      args: { count: v.number() },
      handler: async (ctx, { count }) => {
        for (let i = 0; i < count; i++) await ctx.db.insert("messages", { body: "m" + i });
        return count;
      },
    });
    export const secret = internalQuery({ args: { x: v.number() }, returns: v.number(), handler: async (_ctx, { x }) => x * 2 });
    export const nested = query({
      args: {},
      handler: async (ctx) => {
        const doubled = await ctx.runQuery(anyApi.messages.secret, { x: 21 });
        let invalid = "";
        try {
          await ctx.runQuery(anyApi.messages.secret, { x: "no" } as any);
        } catch (error) {
          invalid = (error as Error).message;
        }
        let data: unknown = null;
        try {
          await ctx.runQuery(anyApi.messages.fails, {});
        } catch (error) {
          data = (error as ConvexError<any>).data;
        }
        return { doubled, invalid, data, meta: await ctx.meta.getFunctionMetadata() };
      },
    });
    export const nestedWrite = mutation({
      args: {},
      handler: async (ctx) => {
        await ctx.runMutation(anyApi.messages.send, { body: "nested" });
        try {
          await ctx.runMutation(anyApi.messages.sendThenFail, {});
        } catch {
          // rolled back
        }
        return await ctx.runQuery(anyApi.messages.count, {});
      },
    });
    export const sendThenFail = mutation({
      args: {},
      handler: async (ctx) => {
        await ctx.db.insert("messages", { body: "rolled back" });
        throw new Error("nope");
      },
    });
    export const schedule = mutation({
      args: {},
      handler: async (ctx) => await ctx.scheduler.runAfter(0, anyApi.messages.send, { body: "later" }),
    });
    export const exits = query({
      args: { how: v.string() },
      handler: async (_ctx, { how }) => {
        if (how === "exit") Deno.exit(3);
        else if (how.startsWith("node:")) {
          // "node:process exit" / "node:process abort": Node's process, imported by a name the bundler cannot see.
          const [module, method] = how.split(" ");
          (await import(module)).default[method](3);
        } else (globalThis as any).close();
        return "still running";
      },
    });
    export const writesStdio = query({
      args: { stream: v.string() },
      handler: async (_ctx, { stream }) => {
        const handle = (Deno as any)[stream];
        handle.writeSync(new TextEncoder().encode("user code wrote to the runner's " + stream + "\\n"));
        return "written";
      },
    });
    export const writesNodeStderr = query({
      args: { module: v.string(), text: v.string() },
      handler: async (_ctx, { module, text }) => {
        // A specifier the bundler cannot see (the module writer refuses a literal node: import).
        const process = (await import(module)).default;
        process.stderr.write(text);
        return "written";
      },
    });
    export const importOutside = query({
      args: {},
      handler: async () => {
        const target = "file:///etc/" + ["host", "name"].join("");
        await import(target);
        return "imported";
      },
    });
    export const sendBig = mutation({
      args: { count: v.number(), size: v.number() },
      handler: async (ctx, { count, size }) => {
        for (let i = 0; i < count; i++) await ctx.db.insert("blobs", { body: String(i).padEnd(size, "x") });
        return null;
      },
    });
    export const bigTotal = query({
      args: {},
      handler: async (ctx) => {
        const docs = await ctx.db.query("blobs").collect();
        return docs.reduce((total, doc) => total + doc.body.length, 0);
      },
    });
    export const fetchUrl = action({
      args: { url: v.string() },
      handler: async (_ctx, { url }) => await (await fetch(url)).text(),
    });
    export const act = action({
      args: { name: v.string() },
      handler: async (ctx, { name }) => {
        const [a, b] = await Promise.all([
          ctx.runQuery(anyApi.messages.hello, { name }),
          ctx.runQuery(anyApi.messages.hello, { name: name + "!" }),
        ]);
        let failure: unknown = null;
        try {
          await ctx.runMutation(anyApi.messages.fails, {});
        } catch (error) {
          failure = { message: (error as Error).message, data: (error as ConvexError<any>).data ?? null };
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { a, b, failure, identity: await ctx.auth.getUserIdentity() };
      },
    });
  `,
  "dir/util.ts": `
    import { internalQuery } from "../_generated/server";
    export default internalQuery(async () => "default export");
  `,
  "http.ts": `
    import { httpRouter } from "convex/server";
    import { httpAction } from "./_generated/server";
    const http = httpRouter();
    http.route({ path: "/hello", method: "GET", handler: httpAction(async () => new Response("hi")) });
    http.route({ pathPrefix: "/files/", method: "POST", handler: httpAction(async () => new Response("ok")) });
    export default http;
  `,
  "crons.ts": `
    import { cronJobs, anyApi } from "convex/server";
    const crons = cronJobs();
    crons.interval("tick", { minutes: 5 }, anyApi.messages.send, { body: "tick" });
    export default crons;
  `,
  "auth.config.ts": `
    export default { providers: [{ domain: process.env.AUTH_DOMAIN ?? "none", applicationID: "convex" }] };
  `,
  "schema.ts": `
    import { defineSchema, defineTable } from "convex/server";
    import { v } from "convex/values";
    export default defineSchema({ messages: defineTable({ body: v.string() }) }, { schemaValidation: false });
  `,
};

/** Writes `files` under `dir/convex/`. */
export async function writeApp(dir: string, files: Record<string, string> = APP_FILES): Promise<string> {
  const convexDir = posix.join(dir, "convex");
  for (const [path, source] of Object.entries(files)) {
    const file = posix.join(convexDir, path);
    await Deno.mkdir(posix.dirname(file), { recursive: true });
    await Deno.writeTextFile(file, source);
  }
  return convexDir;
}

// The CLI rewrites async_hooks imports of isolate bundles to the globals the runtime provides.
const asyncHooksShim: esbuild.Plugin = {
  name: "async-hooks-shim",
  setup(build) {
    build.onResolve({ filter: /^(node:)?async_hooks$/ }, () => ({ path: "async_hooks", namespace: "async-hooks" }));
    build.onLoad({ filter: /.*/, namespace: "async-hooks" }, () => ({
      contents: "export const AsyncLocalStorage = globalThis.AsyncLocalStorage;\n" +
        "export const AsyncResource = globalThis.AsyncResource;\n",
      loader: "js",
    }));
  },
};

/** Bundles the app in `convexDir` like the CLI and returns the modules it would push. */
export async function bundleApp(convexDir: string): Promise<ModuleConfig[]> {
  const entries: string[] = [];
  for await (const path of walk(convexDir)) {
    const relative = posix.relative(convexDir, path);
    if (relative.startsWith("_generated/") || relative.startsWith("schema.")) continue;
    entries.push(path);
  }
  const common: esbuild.BuildOptions = {
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "esnext",
    jsx: "automatic",
    conditions: ["convex", "module"],
    minifySyntax: true,
    minifyIdentifiers: true,
    keepNames: true,
    sourcemap: "external",
    write: false,
    nodePaths: [NODE_MODULES],
    // Next to convex/, so source maps name "../convex/x.ts" as with the CLI.
    outdir: posix.join(convexDir, "..", "out"),
    chunkNames: "_deps/[hash]",
    outbase: convexDir,
    logLevel: "silent",
    plugins: [asyncHooksShim],
  };
  const main = await esbuild.build({ ...common, entryPoints: entries, splitting: true, treeShaking: true });
  const schema = await esbuild.build({ ...common, entryPoints: [posix.join(convexDir, "schema.ts")] });
  return toModules([...main.outputFiles!, ...schema.outputFiles!], posix.join(convexDir, "..", "out"));
}

/** Stops esbuild's service process (tests must not leak it). */
export function stopBundler(): Promise<void> {
  return esbuild.stop();
}

function toModules(files: esbuild.OutputFile[], outdir: string): ModuleConfig[] {
  const maps = new Map<string, string>();
  for (const file of files) if (file.path.endsWith(".map")) maps.set(file.path.slice(0, -4), file.text);
  return files.filter((file) => file.path.endsWith(".js")).map((file) => ({
    path: posix.relative(outdir, file.path),
    source: file.text,
    sourceMap: maps.get(file.path),
    environment: "isolate" as const,
  }));
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else if (/\.(ts|js)$/.test(entry.name)) yield path;
  }
}

/** A data directory with a SQLite database and `modules` written as a deployment, as a server would keep them. */
export interface DeployedApp {
  dataDir: string;
  persistence: Persistence;
  database: Database;
  deploymentDir: string;
}

/** Creates `<dir>/data`, opens its SQLite database and writes `modules` there as a deployment. */
export async function openDeployedApp(dir: string, modules: ModuleConfig[]): Promise<DeployedApp> {
  const dataDir = `${dir}/data`;
  await Deno.mkdir(dataDir);
  const persistence = await openPersistence({ kind: "sqlite", path: `${dataDir}/db.sqlite` });
  const database = await openDatabase(persistence);
  const { deploymentDir } = await writeDeploymentModules(dataDir, modules);
  return { dataDir, persistence, database, deploymentDir };
}
