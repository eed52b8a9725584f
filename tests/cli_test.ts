/**
 * The command line and the server's lifecycle, driven as a user drives them: as a child process started with exactly
 * the permissions the start task's launcher gives the server (src/server/launcher.ts, for the test's temp data
 * directory), so a permission the server lacks fails here rather than on a user's machine.
 */
import { assert, assertEquals, assertOneLine, assertStringIncludes } from "./helpers/assert.ts";
import { freshPostgres } from "./helpers/databases.ts";
import { grantsFor, serverRunArgs } from "../src/server/launcher.ts";
import { SERVER_ENV_NAMES } from "../src/server/mod.ts";

const ROOT = new URL("..", import.meta.url);
const DENO = Deno.execPath();
const DEFAULT_DATA_DIR = "./denvex-data";
const STARTUP_TIMEOUT_MS = 20_000;
const SHUTDOWN_LIMIT_MS = 5_000;
/** Every child gets this environment on top of ours: no colours, and no admin key leaking in from the caller. */
const BASE_ENV = { NO_COLOR: "1", DENVEX_ADMIN_KEY: "" };

// ---------------------------------------------------------------------------------------------------------------
// The start task, as deno.json defines it

async function readTasks(): Promise<Record<string, string>> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  return config.tasks;
}

/** The tokens of a task's final command; throws on shell syntax this parser does not understand. */
function runCommandTokens(task: string): string[] {
  const segments = task.split(" && ");
  const command = segments[segments.length - 1];
  assert(!/["'$`;|<>]/.test(command), `unexpected shell syntax in task command: ${command}`);
  return command.split(/\s+/).filter((token) => token !== "");
}

/**
 * The `deno run` arguments the launcher would use for `args` (a denvex command line), with the data-directory grants
 * of the command (the launcher's own function); `grantsOf` overrides what the command line would be granted.
 */
function launchedArgs(args: string[], grantsOf: string[] = args): string[] {
  return serverRunArgs(grantsFor(grantsOf), args);
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes

interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `main.ts <args>` to completion with the grants the launcher gives `<command> --data dataDir` (the start task's
 * by default, the admin-key task's with `task`).
 */
async function runCli(
  args: string[],
  dataDir: string,
  env: Record<string, string> = {},
  task: "start" | "admin-key" = "start",
): Promise<Finished> {
  const output = await new Deno.Command(DENO, {
    args: launchedArgs(args, [...(task === "admin-key" ? ["admin-key"] : []), "--data", dataDir]),
    cwd: ROOT,
    env: { ...BASE_ENV, ...env },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** A running `main.ts serve`, with its output collected as it arrives. */
class ServerProcess {
  readonly #child: Deno.ChildProcess;
  readonly #pumps: Promise<void>[];
  #output = "";
  #exited = false;

  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#pumps = [this.#pump(child.stdout), this.#pump(child.stderr)];
    child.status.then(() => this.#exited = true);
  }

  /** Everything printed so far, stdout and stderr interleaved. */
  get output(): string {
    return this.#output;
  }

  async #pump(stream: ReadableStream<Uint8Array<ArrayBuffer>>): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) this.#output += text;
  }

  /** Waits until the output matches `pattern`; fails with the output so far if the process exits or time runs out. */
  async waitFor(pattern: RegExp, timeoutMs = STARTUP_TIMEOUT_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.#output.match(pattern);
      if (match) return match;
      if (this.#exited || Date.now() > deadline) {
        throw new Error(`server output never matched ${pattern}; output:\n${this.#output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Waits for the startup banner and returns the origins it names. */
  async ready(): Promise<{ apiUrl: string; siteUrl: string }> {
    const [, apiUrl] = await this.waitFor(/API: +(http:\/\/\S+)/);
    const [, siteUrl] = await this.waitFor(/HTTP actions: +(http:\/\/\S+)/);
    await this.waitFor(/admin key: .*\n/);
    return { apiUrl, siteUrl };
  }

  /** Sends `signal` without waiting. */
  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Sends `signal` and waits for the exit; returns the exit code and how long the shutdown took. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<{ code: number; elapsedMs: number }> {
    const started = performance.now();
    if (!this.#exited) this.#child.kill(signal);
    return await this.wait(started);
  }

  /** Waits for the process to exit by itself. */
  async wait(started = performance.now()): Promise<{ code: number; elapsedMs: number }> {
    const { code } = await this.#child.status;
    await Promise.all(this.#pumps);
    return { code, elapsedMs: performance.now() - started };
  }
}

/** Starts `main.ts serve <args>` with the grants the launcher gives `serve --data dataDir`. */
function spawnServer(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = new Deno.Command(DENO, {
    args: launchedArgs(["serve", "--data", dataDir, ...args], ["--data", dataDir]),
    cwd: ROOT,
    env: { ...BASE_ENV, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return Promise.resolve(new ServerProcess(child));
}

/** A temp data directory, removed after `body`. */
async function withDataDir(body: (dataDir: string) => Promise<void>): Promise<void> {
  const parent = await Deno.makeTempDir({ prefix: "denvex-cli-test-" });
  try {
    await body(`${parent}/data`);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
}

/** A port nobody listens on right now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

const ADMIN_KEY_PATTERN = /^denvex\|[0-9a-f]{64}$/;

// ---------------------------------------------------------------------------------------------------------------
// The tasks

Deno.test("start task: a launcher with --allow-run only; the server gets scoped grants, never -A", async () => {
  const tasks = await readTasks();
  for (const [name, command] of [["start", "start"], ["dev", "dev"], ["admin-key", "start"]]) {
    const tokens = runCommandTokens(tasks[name]);
    assert(
      tasks[name].startsWith("deno install --lock=src/server/deno.lock "),
      `${name} installs the server's packages`,
    );
    assertEquals(tokens.slice(0, 2), ["deno", "run"]);
    const grants = tokens.filter((token) => token.startsWith("--allow") || token === "-A");
    assertEquals(grants, ["--allow-run"], `${name}: the launcher may only start the server`);
    for (const required of ["--cached-only", "--no-prompt", "--node-modules-dir=none"]) {
      assert(tokens.includes(required), `${name} lacks ${required}`);
    }
    assert(!tasks[name].includes("$("), `${name} needs no command substitution (npx deno users)`);
    assertEquals(tokens.slice(tokens.indexOf("main.ts"), tokens.indexOf("main.ts") + 2), ["main.ts", command]);
  }
  const server = launchedArgs(["serve", "--data", "/srv/x"]);
  for (const banned of ["-A", "--allow-all", "--allow-read", "--allow-write", "--allow-env", "--allow-run"]) {
    assert(!server.includes(banned), `the server gets unscoped ${banned}`);
  }
  assert(server.includes("--allow-read=/srv/x"), server.join(" "));
  assert(server.includes("--allow-write=/srv/x"), server.join(" "));
  // The server may run its own deno binary, and taskset (Linux, where installed) to pin runners to CPUs (issue 14);
  // with --no-pin-runners, its own binary only.
  let tasksetHere = false;
  try {
    tasksetHere = new Deno.Command("taskset", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    // Not installed: no grant for it either.
  }
  const taskset = Deno.build.os === "linux" && tasksetHere ? ",taskset" : "";
  assertEquals(server.filter((token) => token.startsWith("--allow-run")), [`--allow-run=${DENO}${taskset}`]);
  const unpinned = launchedArgs(["serve", "--data", "/srv/x", "--no-pin-runners"]);
  assertEquals(unpinned.filter((token) => token.startsWith("--allow-run")), [`--allow-run=${DENO}`]);
  assert(server.includes(`--allow-env=${SERVER_ENV_NAMES.join(",")}`), "env list");
  assertEquals(server.filter((token) => token.startsWith("--allow-sys")), ["--allow-sys=networkInterfaces"]);
  const adminKey = launchedArgs(["admin-key", "--data", "/srv/x"]);
  assert(adminKey.includes("--allow-read=/srv/x") && !adminKey.some((t) => t.startsWith("--allow-write")));
});

Deno.test("launcher grants: the paths the flags name, as the server parses them", () => {
  const cwd = Deno.cwd();
  assertEquals(grantsFor([]), { read: [`${cwd}/denvex-data`], write: [`${cwd}/denvex-data`] });
  assertEquals(grantsFor(["--data=/x", "--port", "0"]), { read: ["/x"], write: ["/x"] });
  assertEquals(grantsFor(["serve", "--data", "/a", "--data", "/b"]), { read: ["/b"], write: ["/b"] });
  assertEquals(grantsFor(["admin-key", "--data", "/x"]), { read: ["/x"], write: [] });
  assertEquals(grantsFor(["restore", "/z.zip", "--data", "/x"]), { read: ["/x", "/z.zip"], write: ["/x"] });
  assertEquals(grantsFor(["--admin-key-file", "/k", "--backup-dir", "rel"]), {
    read: [`${cwd}/denvex-data`, "/k", `${cwd}/rel`],
    write: [`${cwd}/denvex-data`, `${cwd}/rel`],
  });
  let refused = false;
  try {
    serverRunArgs(grantsFor(["--data", "/a,b"]), []);
  } catch (error) {
    refused = error instanceof Error && error.name === "UsageError" && error.message.includes("comma");
  }
  assert(refused, "a path with a comma cannot be granted");
});

Deno.test("start task: runs through deno's task shell and forwards flags", async () => {
  const run = (args: string[]) =>
    new Deno.Command(DENO, { args: ["task", "start", ...args], cwd: ROOT, env: BASE_ENV, stdin: "null" }).output();
  const help = await run(["--help"]);
  const stdout = new TextDecoder().decode(help.stdout);
  assertEquals(help.code, 0, new TextDecoder().decode(help.stderr));
  assert(stdout.includes("Usage:"), stdout);
  const bad = await run(["--no-such-flag"]);
  assertEquals(bad.code, 2);
  assert(new TextDecoder().decode(bad.stderr).includes("--no-such-flag"));
});

// ---------------------------------------------------------------------------------------------------------------
// Flags

Deno.test("--help prints usage and exits 0", async () => {
  for (const args of [["--help"], ["-h"], ["serve", "--help"], ["admin-key", "--help"]]) {
    const result = await runCli(args, DEFAULT_DATA_DIR);
    assertEquals(result.code, 0, `${args}: ${result.stderr}`);
    for (const text of ["Usage:", "--port", "--site-port", "--data", "--db", "--admin-key-file", "--instance-name"]) {
      assert(result.stdout.includes(text), `usage lacks ${text}`);
    }
  }
});

Deno.test("--version prints the version and exits 0, also through the start task", async () => {
  for (const args of [["--version"], ["-V"], ["serve", "--version"]]) {
    const result = await runCli(args, DEFAULT_DATA_DIR);
    assertEquals(result.code, 0, `${args}: ${result.stderr}`);
    assert(/^denvex \d+\.\d+\.\d+\n$/.test(result.stdout), result.stdout);
  }
  const task = await new Deno.Command(DENO, {
    args: ["task", "start", "--version"],
    cwd: ROOT,
    env: BASE_ENV,
    stdin: "null",
  }).output();
  assertEquals(task.code, 0, new TextDecoder().decode(task.stderr));
  assert(/^denvex \d+\.\d+\.\d+\n$/.test(new TextDecoder().decode(task.stdout)));
});

Deno.test("invalid flags: one line on stderr, exit 2, nothing created", async () => {
  await withDataDir(async (dataDir) => {
    const cases: [string[], string][] = [
      [["serve", "--bogus"], "--bogus"],
      [["--bogus"], "--bogus"],
      [["frobnicate"], "frobnicate"],
      [["serve", "--port", "70000"], "--port"],
      [["serve", "--port", "abc"], "--port"],
      [["serve", "--port"], "--port"],
      [["serve", "--site-port", "-1"], "--site-port"],
      [["serve", "--port", "4000", "--site-port", "4000"], "must differ"],
      [["serve", "--db", "mongodb://root@localhost/db"], "--db"],
      [["serve", "--db", "postgres://"], "--db"],
      [["serve", "--instance-name", "a|b"], "--instance-name"],
      [["serve", "--admin-key", "no-separator"], "--admin-key"],
      [["admin-key", "--port", "1"], "--port"],
    ];
    for (const [args, mention] of cases) {
      const result = await runCli([...args, "--data", dataDir], dataDir);
      assertEquals(result.code, 2, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
      assertStringIncludes(assertOneLine(result.stderr), mention);
      assertEquals(result.stdout, "");
    }
    assert(!(await exists(dataDir)), "a rejected command line must not create the data directory");
  });
});

Deno.test("a malformed DENVEX_ADMIN_KEY is a configuration error", async () => {
  await withDataDir(async (dataDir) => {
    const result = await runCli(["serve", "--data", dataDir], dataDir, { DENVEX_ADMIN_KEY: "has space|x y" });
    assertEquals(result.code, 2);
    assertStringIncludes(assertOneLine(result.stderr), "DENVEX_ADMIN_KEY");
  });
});

Deno.test("a data directory outside the granted one fails early with a hint", async () => {
  await withDataDir(async (granted) => {
    const elsewhere = `${granted}-elsewhere`;
    const result = await runCli(["serve", "--data", elsewhere, "--port", "0", "--site-port", "0"], granted);
    assertEquals(result.code, 2);
    assertStringIncludes(assertOneLine(result.stderr), `--allow-write=${elsewhere}`);
    assert(!(await exists(elsewhere)));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Serving

Deno.test("serve: /version, admin key generated and stored, SIGTERM exits 0", async () => {
  await withDataDir(async (dataDir) => {
    const [apiPort, sitePort] = [freePort(), freePort()];
    const server = await spawnServer(dataDir, ["--port", `${apiPort}`, "--site-port", `${sitePort}`]);
    const { apiUrl, siteUrl } = await server.ready();
    assertEquals(apiUrl, `http://127.0.0.1:${apiPort}`);
    assertEquals(siteUrl, `http://127.0.0.1:${sitePort}`);

    const version = await fetch(`${apiUrl}/version`);
    assertEquals(version.status, 200);
    assert(/^denvex \d+\.\d+\.\d+/.test(await version.text()));
    const missing = await fetch(`${siteUrl}/no/such/route`);
    assertEquals(missing.status, 404);
    assertEquals(await missing.json(), { code: "NotFound", message: "No HttpAction routed for /no/such/route" });

    // The generated key is stored (owner-only) but never printed: server output ends up in logs.
    // The hint works without deno on PATH and names this data directory.
    await server.waitFor(
      new RegExp(
        `admin key: +generated and stored in ${dataDir}/admin-key \\(print it with: cat ${dataDir}/admin-key\\)`,
      ),
    );
    const printedKey = (await Deno.readTextFile(`${dataDir}/admin-key`)).trim();
    assert(ADMIN_KEY_PATTERN.test(printedKey), printedKey);
    assert(!server.output.includes(printedKey), "the generated admin key is not printed");
    assertEquals((await Deno.stat(`${dataDir}/admin-key`)).mode! & 0o777, 0o600);

    const { code, elapsedMs } = await server.stop("SIGTERM");
    assertEquals(code, 0, server.output);
    assert(elapsedMs < SHUTDOWN_LIMIT_MS, `shutdown took ${elapsedMs} ms`);

    // Under the admin-key task's permissions: read access to the data directory, nothing else.
    const adminKey = await runCli(["admin-key", "--data", dataDir], dataDir, {}, "admin-key");
    assertEquals(adminKey.code, 0, adminKey.stderr);
    assertEquals(adminKey.stdout.trim(), printedKey);

    // A second start reuses the stored key and does not print it again.
    const again = await spawnServer(dataDir, ["--port", "0", "--site-port", "0", "--instance-name", "other"]);
    await again.ready();
    assert(again.output.includes("admin key:    stored in"), again.output);
    assert(!again.output.includes(printedKey), "a stored key is not printed at every start");
    assertEquals((await again.stop("SIGINT")).code, 0, again.output);
    assertEquals((await Deno.readTextFile(`${dataDir}/admin-key`)).trim(), printedKey);
  });
});

Deno.test("serve: --admin-key-file and DENVEX_ADMIN_KEY override the stored key and are never written", async () => {
  await withDataDir(async (dataDir) => {
    // The key file sits inside the data directory, which the start task's permissions may read.
    await Deno.mkdir(dataDir, { recursive: true });
    const keyFile = `${dataDir}/supplied-key`;
    await Deno.writeTextFile(keyFile, `denvex|${"ab".repeat(32)}\n`);
    const fromFile = await spawnServer(dataDir, ["--port", "0", "--site-port", "0", "--admin-key-file", keyFile], {
      DENVEX_ADMIN_KEY: `denvex|${"cd".repeat(32)}`,
    });
    await fromFile.ready();
    assert(fromFile.output.includes("admin key:    from --admin-key-file"), fromFile.output);
    assertEquals((await fromFile.stop()).code, 0, fromFile.output);

    const fromEnv = await spawnServer(dataDir, ["--port", "0", "--site-port", "0"], {
      DENVEX_ADMIN_KEY: `convex-self-hosted|${"ef".repeat(32)}`,
    });
    await fromEnv.ready();
    assert(fromEnv.output.includes("admin key:    from DENVEX_ADMIN_KEY"), fromEnv.output);
    assertEquals((await fromEnv.stop()).code, 0, fromEnv.output);

    assert(!(await exists(`${dataDir}/admin-key`)), "a supplied key must not be stored");
    const adminKey = await runCli(["admin-key", "--data", dataDir], dataDir);
    assertEquals(adminKey.code, 1);
    assertStringIncludes(assertOneLine(adminKey.stderr), "no admin key");
  });
});

Deno.test("serve: SIGINT followed at once by SIGTERM (Ctrl-C under a task runner) still shuts down cleanly", async () => {
  await withDataDir(async (dataDir) => {
    const server = await spawnServer(dataDir, ["--port", "0", "--site-port", "0"]);
    await server.ready();
    server.signal("SIGINT");
    const { code, elapsedMs } = await server.stop("SIGTERM");
    assertEquals(code, 0, server.output);
    assert(server.output.includes("denvex: stopped"), server.output);
    assert(elapsedMs < SHUTDOWN_LIMIT_MS, `shutdown took ${elapsedMs} ms`);
  });
});

/** An IPv4 address of this machine other than loopback, if it has one. */
function externalIpv4(): string | undefined {
  return Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."))?.address;
}

Deno.test("serve: listens on loopback by default; --host 0.0.0.0 is announced with a warning", async () => {
  await withDataDir(async (dataDir) => {
    const apiPort = freePort();
    const server = await spawnServer(dataDir, ["--port", `${apiPort}`, "--site-port", "0"]);
    await server.ready();
    await server.waitFor(/listening on: 127\.0\.0\.1\n/);
    assert(!server.output.includes("reachable from other machines"), server.output);
    const external = externalIpv4();
    if (external) {
      const refused = await fetch(`http://${external}:${apiPort}/version`).then(() => false, () => true);
      assert(refused, `the API answered on ${external}`);
    }
    assertEquals((await server.stop("SIGTERM")).code, 0, server.output);
  });
  await withDataDir(async (dataDir) => {
    const server = await spawnServer(dataDir, ["--host", "0.0.0.0", "--port", "0", "--site-port", "0"]);
    await server.ready();
    await server.waitFor(/listening on: 0\.0\.0\.0 \(all interfaces\)\n.*reachable from other machines/);
    assertEquals((await server.stop("SIGTERM")).code, 0, server.output);
  });
});

Deno.test("serve: a port in use is a clean startup failure", async () => {
  await withDataDir(async (dataDir) => {
    const busy = Deno.listen({ hostname: "0.0.0.0", port: 0 });
    try {
      const server = await spawnServer(dataDir, ["--port", `${busy.addr.port}`, "--site-port", "0"]);
      const { code } = await server.wait();
      assertEquals(code, 1, server.output);
      assert(server.output.includes(`port ${busy.addr.port} is already in use`), server.output);
    } finally {
      busy.close();
    }
  });
});

Deno.test("serve: --db postgres://", async () => {
  const database = await freshPostgres();
  assert(database.kind === "postgres");
  try {
    await withDataDir(async (dataDir) => {
      const server = await spawnServer(dataDir, ["--port", "0", "--site-port", "0", "--db", database.url]);
      const { apiUrl } = await server.ready();
      assert(server.output.includes("database:     PostgreSQL"), server.output);
      assertEquals((await fetch(`${apiUrl}/version`)).status, 200);
      assertEquals((await server.stop()).code, 0, server.output);
    });
  } finally {
    await database.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The single executable

/**
 * Where `deno compile` finds its base binary offline: `DENORT_BIN`, or the zip in the cache. Deno's download host is
 * unreachable on the project's machines, so there the compile test is skipped, with the reason in its name.
 */
async function findDenort(): Promise<string | null> {
  const fromEnv = Deno.env.get("DENORT_BIN");
  if (fromEnv) return fromEnv;
  const info = await new Deno.Command(DENO, { args: ["info", "--json"], stdout: "piped", stderr: "null" }).output();
  const { denoDir } = JSON.parse(new TextDecoder().decode(info.stdout));
  const version = Deno.version.deno;
  const zip = `${denoDir}/dl/release/v${version}/denort-${Deno.build.target}.zip`;
  return await exists(zip) ? zip : null;
}

const denort = await findDenort();

Deno.test({
  name: "compile: without a denort base binary, one message says what to do (DENORT_BIN), no backtrace",
  ignore: denort !== null,
  fn: async () => {
    const result = await new Deno.Command(DENO, {
      args: ["task", "compile"],
      cwd: ROOT,
      env: { ...BASE_ENV, DENORT_BIN: "" },
      stdin: "null",
    }).output();
    const stdout = new TextDecoder().decode(result.stdout);
    const stderr = new TextDecoder().decode(result.stderr);
    assertEquals(result.code, 1, stdout + stderr);
    assertStringIncludes(stderr, "DENORT_BIN=/path/to/denort");
    assert(!stderr.includes("Stack backtrace"), stderr);
    // What the executable would embed: the server's packages only, never the test tooling.
    const embeds = /embeds: (\d+) npm packages, ([\d.]+) MiB/.exec(stdout);
    assert(embeds, stdout);
    assert(Number(embeds[2]) < 40, `embeds ${embeds[2]} MiB of packages`);
  },
});

Deno.test({
  name: `compile: the executable serves, --data anywhere${
    denort ? "" : " (SKIPPED: no denort base binary; set DENORT_BIN or run where dl.deno.land is reachable)"
  }`,
  ignore: denort === null,
  fn: async () => {
    const compiled = await new Deno.Command(DENO, { args: ["task", "compile"], cwd: ROOT, env: BASE_ENV }).output();
    assertEquals(compiled.code, 0, new TextDecoder().decode(compiled.stderr));
    const binary = new URL("dist/denvex", ROOT).pathname;
    const help = await new Deno.Command(binary, { args: ["--help"], env: BASE_ENV }).output();
    assertEquals(help.code, 0);
    await withDataDir(async (dataDir) => {
      const child = new Deno.Command(binary, {
        args: ["serve", "--data", dataDir, "--port", "0", "--site-port", "0"],
        env: BASE_ENV,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const server = new ServerProcess(child);
      const { apiUrl } = await server.ready();
      assertEquals((await fetch(`${apiUrl}/version`)).status, 200);
      assertEquals((await server.stop()).code, 0, server.output);
      assert(await exists(`${dataDir}/admin-key`));
    });
  },
});
