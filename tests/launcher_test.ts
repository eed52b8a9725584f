/**
 * `deno task start` as a user runs it: a data directory anywhere (`--data`), the server process granted exactly what
 * the flags name, stop signals passed through, the admin-key task for the same directory, and a lean, offline start:
 * only the server's own packages (src/server/deno.lock), nothing fetched once installed.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { commandLineOf, descendantPids } from "./helpers/server_child.ts";
import { SERVER_V8_FLAGS } from "../src/server/launcher.ts";
import { RUNNER_MALLOC_ARENA_MAX, RUNNER_MAX_SEMI_SPACE_MIB } from "../src/runtime/runner_command.ts";

const ROOT = new URL("..", import.meta.url);
const DENO = Deno.execPath();
const STARTUP_TIMEOUT_MS = 30_000;
/** Packages only tests use: none may be part of the server's dependency set. */
const TEST_ONLY_PACKAGES = [
  "playwright-core",
  "s3rver",
  "react",
  "react-dom",
  "openai",
  "convex",
  "prettier",
  "@convex-dev/",
  "semver",
];

/** `deno task <args>` (through `unshare -n` when `offline`), its output collected. */
function task(args: string[], options: { offline?: boolean; env?: Record<string, string> } = {}) {
  const [command, commandArgs] = options.offline
    ? ["unshare", ["-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', DENO, "task", ...args]]
    : [DENO, ["task", ...args]];
  const child = new Deno.Command(command, {
    args: commandArgs as string[],
    cwd: ROOT,
    env: { NO_COLOR: "1", DENVEX_ADMIN_KEY: "", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const pumps = Promise.all([child.stdout, child.stderr].map(async (stream) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) output += text;
  }));
  return {
    pid: child.pid,
    output: () => output,
    async waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
      const deadline = Date.now() + STARTUP_TIMEOUT_MS;
      for (;;) {
        const match = output.match(pattern);
        if (match) return match;
        if (Date.now() > deadline) throw new Error(`output never matched ${pattern}:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    signal(signal: Deno.Signal) {
      child.kill(signal);
    },
    async exited(): Promise<number> {
      const { code } = await child.status;
      await pumps;
      return code;
    },
  };
}

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-launcher-test-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The command line and environment of each of `pid`'s descendants. */
async function processEnvironments(pid: number): Promise<{ line: string; env: Map<string, string> }[]> {
  const found = [];
  for (const child of await descendantPids(pid)) {
    const raw = await Deno.readTextFile(`/proc/${child}/environ`).catch(() => "");
    const env = new Map(
      raw.split("\0").filter((entry) => entry.includes("=")).map((entry) => {
        const at = entry.indexOf("=");
        return [entry.slice(0, at), entry.slice(at + 1)] as [string, string];
      }),
    );
    found.push({ line: await commandLineOf(child), env });
  }
  return found;
}

/** The command lines of `pid`'s descendants that run main.ts. */
async function mainTsProcesses(pid: number): Promise<string[]> {
  const lines = await Promise.all((await descendantPids(pid)).map(commandLineOf));
  return lines.filter((line) => line.includes("main.ts"));
}

Deno.test("deno task start --data <anywhere>: the server gets exactly that directory; SIGTERM stops it cleanly", async () => {
  await withTempDir(async (dir) => {
    const dataDir = `${dir}/not/yet/there`;
    const server = task(["start", "--data", dataDir, "--port", "0", "--site-port", "0"]);
    // A failed assertion must not leave the server running (it would outlive the test run).
    let stopped = false;
    try {
      const [, apiUrl] = await server.waitFor(/API: +(http:\/\/\S+)/);
      await server.waitFor(
        new RegExp(`admin key: +generated and stored in ${dataDir}/admin-key \\(print it with: cat `),
      );
      assertEquals((await fetch(`${apiUrl}/version`)).status, 200);

      const processes = await mainTsProcesses(server.pid);
      const launcher = processes.find((line) => / main\.ts start /.test(line));
      const serving = processes.find((line) => /\/main\.ts (serve )?--data /.test(line));
      assert(launcher !== undefined && serving !== undefined, processes.join("\n"));
      assertEquals(launcher.split(" ").filter((token) => token.startsWith("--allow")), ["--allow-run"]);
      assertStringIncludes(serving, ` --allow-read=${dataDir} `);
      assertStringIncludes(serving, ` --allow-write=${dataDir} `);
      // Its own binary, and taskset where installed, to pin runners to CPUs (cli_test checks when it is there).
      assert(
        serving.includes(` --allow-run=${DENO} `) || serving.includes(` --allow-run=${DENO},taskset `),
        `--allow-run: ${serving}`,
      );
      // The server's young-generation cap (issue 14): the process `deno task start` starts carries it.
      assertStringIncludes(serving, ` --v8-flags=${SERVER_V8_FLAGS} `);
      // Its runners' malloc arena cap and young-generation cap (issue 14, footprint).
      const environments = await processEnvironments(server.pid);
      const runners = environments.filter(({ line }) => / runner /.test(` ${line} `) && line.includes("main.ts"));
      assert(runners.length > 0, environments.map(({ line }) => line).join("\n"));
      for (const runner of runners) {
        assertEquals(runner.env.get("MALLOC_ARENA_MAX"), RUNNER_MALLOC_ARENA_MAX);
        assertStringIncludes(runner.line, `--max-semi-space-size=${RUNNER_MAX_SEMI_SPACE_MIB}`);
        assert(!runner.line.includes("--optimize-for-size"), runner.line);
      }
      for (const unscoped of [" --allow-read ", " --allow-write ", " --allow-env ", " --allow-run ", " -A "]) {
        assert(!serving.includes(unscoped), `the server got${unscoped}: ${serving}`);
      }

      server.signal("SIGTERM");
      const code = await server.exited();
      stopped = true;
      assertEquals(code, 0, server.output());
      assertStringIncludes(server.output(), "denvex: stopped");
      assertEquals((await mainTsProcesses(server.pid)).length, 0);
    } finally {
      if (!stopped) {
        server.signal("SIGTERM");
        await server.exited();
      }
    }

    // The admin-key task reads the same directory.
    const adminKey = task(["-q", "admin-key", "--data", dataDir]);
    assertEquals(await adminKey.exited(), 0, adminKey.output());
    assertEquals(adminKey.output().trim(), (await Deno.readTextFile(`${dataDir}/admin-key`)).trim());
  });
});

Deno.test("deno task start: bad flags exit 2, one line, before anything is created", async () => {
  await withTempDir(async (dir) => {
    const bad = task(["-q", "start", "--data", `${dir}/data`, "--port", "99999"]);
    assertEquals(await bad.exited(), 2, bad.output());
    assertStringIncludes(bad.output(), "--port");
    const missing = await Deno.stat(`${dir}/data`).then(() => false, () => true);
    assert(missing, "nothing was created");
  });
});

Deno.test("the server's dependency set: its own lockfile, current, without test tooling", async () => {
  const lock = JSON.parse(await Deno.readTextFile(new URL("src/server/deno.lock", ROOT))) as {
    npm: Record<string, unknown>;
  };
  const packages = Object.keys(lock.npm).map((key) => key.slice(0, key.lastIndexOf("@")));
  for (const name of packages) {
    assert(!TEST_ONLY_PACKAGES.some((test) => name === test || name.startsWith(test)), `server lock holds ${name}`);
  }
  assert(packages.includes("hono") && packages.includes("postgres"), packages.join(", "));
  // Current: installing main.ts's graph against it changes nothing (else: deno task lock-server).
  const frozen = await new Deno.Command(DENO, {
    args: ["install", "--frozen", "--lock=src/server/deno.lock", "--node-modules-dir=none", "--entrypoint", "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(frozen.code, 0, `run deno task lock-server: ${new TextDecoder().decode(frozen.stderr)}`);
});

/** True when this machine lets us make a network namespace with a loopback interface (root, `unshare`, `ip`). */
async function canGoOffline(): Promise<boolean> {
  try {
    const probe = await new Deno.Command("unshare", {
      args: ["-n", "sh", "-c", "ip link set lo up"],
      stdout: "null",
      stderr: "null",
    }).output();
    return probe.success;
  } catch {
    return false;
  }
}

const offline = await canGoOffline();

Deno.test({
  name: `deno task start without any network: starts, silent, nothing downloaded${
    offline ? "" : " (SKIPPED: cannot make a network namespace here: needs root, unshare and ip)"
  }`,
  ignore: !offline,
  fn: async () => {
    await withTempDir(async (dir) => {
      const server = task(["start", "--data", `${dir}/data`, "--port", "0", "--site-port", "0"], { offline: true });
      const [, apiUrl] = await server.waitFor(/API: +(http:\/\/\S+)/);
      assert(apiUrl.startsWith("http://127.0.0.1:"));
      server.signal("SIGTERM");
      assertEquals(await server.exited(), 0, server.output());
      const lines = server.output().split("\n").filter((line) => line.trim() !== "");
      assert(!/Download|registry\.npmjs|error/i.test(server.output()), server.output());
      // The task's echo of its command, the banner, and the shutdown: nothing from an install.
      assert(lines[0].startsWith("Task start "), lines[0]);
      assert(lines[1].startsWith("denvex "), server.output());
    });
  },
});
