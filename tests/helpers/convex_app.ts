/**
 * Test helper: a Convex app folder in a temporary directory (package.json, `node_modules/convex` linked to this
 * checkout's copy, a `convex/` folder), the official CLI run against a denvex deployment, and a denvex backend served
 * in-process (deploy routes mounted the way the server mounts them).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createApiApp } from "../../src/http/mod.ts";
import { deployRoutes } from "../../src/http/mod.ts";
import type { ActionNetOptions } from "../../src/runtime/mod.ts";
import { type Backend, openBackend } from "../../src/server/backend.ts";
import { openStorage } from "../../src/server/storage.ts";
import { serveCommandArgs } from "./server_child.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
/** How long one CLI command may run before the test fails. */
const CLI_TIMEOUT_MS = 120_000;

/** A Convex app on disk. */
export interface ConvexApp {
  dir: string;
  /** Writes files under `convex/` (path → source). */
  write(files: Record<string, string>): Promise<void>;
  /** Deletes a file under `convex/`. */
  remove(path: string): Promise<void>;
  /** Deletes the folder. */
  dispose(): Promise<void>;
}

/** Creates an app folder with `files` under `convex/`. */
export async function createConvexApp(files: Record<string, string>): Promise<ConvexApp> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-app-" });
  await Deno.writeTextFile(
    join(dir, "package.json"),
    JSON.stringify({ name: "denvex-test-app", private: true, type: "module", dependencies: { convex: "1.48.0" } }),
  );
  await Deno.mkdir(join(dir, "node_modules"), { recursive: true });
  // The real path, so node resolves the CLI's own dependencies (esbuild, ws, …) next to it.
  await Deno.symlink(await Deno.realPath(join(REPO, "node_modules/convex")), join(dir, "node_modules/convex"));
  const app: ConvexApp = {
    dir,
    async write(more) {
      for (const [path, source] of Object.entries(more)) {
        const file = join(dir, "convex", path);
        await Deno.mkdir(dirname(file), { recursive: true });
        await Deno.writeTextFile(file, source);
      }
    },
    remove: (path) => Deno.remove(join(dir, "convex", path)),
    dispose: () => Deno.remove(dir, { recursive: true }),
  };
  await app.write(files);
  return app;
}

/** The outcome of one CLI command. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `npx convex <args>` (the CLI of node_modules) in the app against a self-hosted deployment. */
export async function runConvexCli(
  app: ConvexApp,
  args: readonly string[],
  deployment: { url: string; adminKey: string },
): Promise<CliResult> {
  const command = new Deno.Command("node", {
    args: [join(app.dir, "node_modules/convex/bin/main.js"), ...args],
    cwd: app.dir,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: app.dir,
      CONVEX_SELF_HOSTED_URL: deployment.url,
      CONVEX_SELF_HOSTED_ADMIN_KEY: deployment.adminKey,
      CI: "1",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(CLI_TIMEOUT_MS),
  });
  const output = await command.output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** The CLI arguments of a push: `deploy`, unprompted, without the CLI's TypeScript check (tsc over the app). */
export const DEPLOY_ARGS: readonly string[] = ["deploy", "--typecheck=disable", "-y"];

/**
 * Pushes `app` to `deployment` with the official CLI (`args`, a plain deploy by default); throws with the CLI's output
 * when it fails.
 */
export async function deployApp(
  app: ConvexApp,
  deployment: { url: string; adminKey: string },
  args: readonly string[] = DEPLOY_ARGS,
): Promise<CliResult> {
  const result = await runConvexCli(app, args, deployment);
  if (result.code !== 0) throw new Error(`deploy failed (${result.code}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** A denvex backend served on a random port in this process. */
export interface TestDeployment {
  url: string;
  adminKey: string;
  backend: Backend;
  close(): Promise<void>;
}

/** Opens a backend on a fresh data directory and serves the API app with the deploy routes on a free port. */
export async function startTestDeployment(
  options: {
    onRequest?: (method: string, path: string, durationMs: number) => void;
    /** The action network policy's options (e.g. a host a test's mock server listens on). */
    actionNet?: ActionNetOptions;
    /** Mounts the function routes too (`/api/query`, …), for tests that call functions over HTTP. */
    functionRoutes?: boolean;
  } = {},
): Promise<TestDeployment> {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-data-" });
  const adminKey = `denvex-test|${crypto.randomUUID().replaceAll("-", "")}`;
  const location = { kind: "sqlite" as const, path: join(dataDir, "denvex.sqlite3") };
  const database = await openStorage(location);
  const urls = { cloudUrl: "", siteUrl: "" };
  const backend = await openBackend({
    database,
    location,
    dataDir,
    adminKey,
    instanceName: "denvex-test",
    urls,
    ...(options.actionNet ? { actionNet: options.actionNet } : {}),
  });
  const app = createApiApp({
    version: "denvex test",
    instanceName: "denvex-test",
    adminKey,
    // With the backend the API app mounts the deploy routes itself.
    ...(options.functionRoutes ? { backend } : {}),
  });
  const onRequest = options.onRequest;
  if (onRequest) {
    app.use("*", async (c, next) => {
      const started = performance.now();
      await next();
      onRequest(c.req.method, new URL(c.req.url).pathname, performance.now() - started);
    });
  }
  if (!options.functionRoutes) app.route("/api", deployRoutes(backend));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  urls.cloudUrl = url;
  urls.siteUrl = url + "/http";
  return {
    url,
    adminKey,
    backend,
    async close() {
      await server.shutdown();
      await backend.close();
      await database.close();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** How long the spawned server may take to print its banner. */
const SERVER_START_TIMEOUT_MS = 30_000;

/** A `main.ts serve` process on free ports and a temporary data directory. */
export interface ServerProcess {
  url: string;
  siteUrl: string;
  adminKey: string;
  dataDir: string;
  /** The server process's ID (e.g. to read its memory from `/proc/<pid>/status`). */
  pid: number;
  /** Stops the server (SIGTERM) and deletes its data directory unless the caller passed one. */
  close(): Promise<void>;
  /** kill -9: no shutdown at all; the data directory stays (restart with `spawnServer({dataDir, adminKey})`). */
  kill(): Promise<void>;
}

/** How {@link spawnServer} starts the server. Every field is optional. */
export interface SpawnServerOptions {
  /** An existing data directory (to restart on the same data); it is never deleted. Default: a fresh temp dir. */
  dataDir?: string;
  /** Default: a fresh random key. */
  adminKey?: string;
  /** `--db`: a `postgres://` URL (default: SQLite in the data directory). */
  db?: string | undefined;
  /** API port (default 0: any free port). Pass the previous server's port to restart on the same URL. */
  port?: number;
  /** HTTP-actions port (default 0: any free port). */
  sitePort?: number;
  /** More `serve` flags (e.g. `--backup-every=2s`). */
  extraArgs?: string[];
  /** More `deno run` flags for the server process (e.g. `--v8-flags=…` from a benchmark's knob). */
  denoFlags?: readonly string[];
}

/** A TCP port that was free a moment ago on 127.0.0.1 (listen on 0, note the port, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Spawns the real server with the permission flags of the `start` task (data directory swapped for a temp one, or
 * `options.dataDir` to restart on existing data; `db`, `port`, `sitePort` become `--db`, `--port`, `--site-port`).
 */
export async function spawnServer(options: SpawnServerOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "denvex-server-" });
  const adminKey = options.adminKey ?? `denvex-test|${crypto.randomUUID().replaceAll("-", "")}`;
  const args = await serveCommandArgs(dataDir, [
    `--port=${options.port ?? 0}`,
    `--site-port=${options.sitePort ?? 0}`,
    "--host=127.0.0.1",
    `--data=${dataDir}`,
    ...(options.db === undefined ? [] : [`--db=${options.db}`]),
    ...(options.extraArgs ?? []),
  ]);
  // Just before the module, after the default flags: a later `--v8-flags` wins over an earlier one.
  args.splice(args.findIndex((arg) => arg.endsWith("main.ts")), 0, ...(options.denoFlags ?? []));
  const child = new Deno.Command(Deno.execPath(), {
    args,
    // The key goes through the environment: the server refuses secrets on its command line.
    env: { DENVEX_ADMIN_KEY: adminKey },
    cwd: REPO,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  // A server that prints nothing never ends a read: the timer cancels it (and the process) instead.
  const timer = setTimeout(() => {
    banner += "\n(no banner after " + SERVER_START_TIMEOUT_MS + " ms)";
    reader.cancel().catch(() => {});
  }, SERVER_START_TIMEOUT_MS);
  try {
    while (!/HTTP actions: +http:\/\/\S+/.test(banner)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the server did not start:\n${banner}`);
      banner += value;
    }
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    if (!options.dataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  // Keep draining stdout so the server never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  /** Sends `name` unless the process has already exited (then `close()`/`kill()` only wait). */
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch { /* already exited */ }
  };
  const url = /API: +(http:\/\/\S+)/.exec(banner)![1];
  const siteUrl = /HTTP actions: +(http:\/\/\S+)/.exec(banner)![1];
  return {
    url,
    siteUrl,
    adminKey,
    dataDir,
    pid: child.pid,
    async close() {
      signal("SIGTERM");
      await child.status;
      if (!options.dataDir) await Deno.remove(dataDir, { recursive: true });
    },
    async kill() {
      signal("SIGKILL");
      await child.status;
    },
  };
}

/** Test apps kept as folders (a `package.json` and a `convex/` folder each). */
const FIXTURES_DIR = join(REPO, "tests/fixtures");

/**
 * Copies the folder `from` into `to`, leaving out any `node_modules`. (Fixtures are written for Node's module
 * resolution, so deno.json excludes `tests/fixtures` from check, fmt and lint.)
 */
async function copyFolder(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.name === "node_modules") continue;
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory) await copyFolder(source, target);
    else await Deno.copyFile(source, target);
  }
}

/**
 * Creates an app folder from `tests/fixtures/<name>` (copied as {@link copyFolder} says), with
 * `node_modules/convex` linked as in {@link createConvexApp} and every `@convex-dev/*` package of this checkout linked
 * too, so the CLI bundles the real npm components. Real paths, so each component resolves its own dependencies
 * (`convex-helpers`, `@convex-dev/batch-worker`, …) next to it.
 */
export async function createConvexAppFromFixture(name: string): Promise<ConvexApp> {
  const app = await createConvexApp({});
  await copyFolder(join(FIXTURES_DIR, name), app.dir);
  const installed = join(REPO, "node_modules/@convex-dev");
  const linked = join(app.dir, "node_modules/@convex-dev");
  await Deno.mkdir(linked, { recursive: true });
  for await (const entry of Deno.readDir(installed)) {
    await Deno.symlink(await Deno.realPath(join(installed, entry.name)), join(linked, entry.name));
  }
  return app;
}
