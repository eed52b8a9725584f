/**
 * Start-up time, from spawning a command to the first `200` from `GET /version`, on a fresh data directory each time:
 *
 * - baseline: `deno run <grants> main.ts serve` started directly (no install step, no launcher), as tests start it;
 * - the previous start task: `deno task` running `deno install --frozen` (every package of deno.json) then that
 *   direct run;
 * - the launcher alone: `deno run --allow-run main.ts start` (parses, spawns the server with its grants);
 * - `deno task start` as a user runs it (install step for the server's lockfile, then the launcher).
 *
 * Prints medians of alternating runs and each as a ratio of the baseline.
 */
import { fileURLToPath } from "node:url";
import { grantsFor, serverRunArgs } from "../../src/server/launcher.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DENO = Deno.execPath();
const ROUNDS = 9;
const TIMEOUT_MS = 30_000;
const LAUNCHER_FLAGS = [
  "--lock=src/server/deno.lock",
  "--node-modules-dir=none",
  "--cached-only",
  "--no-prompt",
  "--allow-run",
];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

type Variant = { name: string; command: (dataDir: string, serveArgs: string[]) => [string, string[]] };

const VARIANTS: Variant[] = [
  {
    name: "direct deno run (baseline)",
    command: (dataDir, serveArgs) => [
      DENO,
      serverRunArgs(grantsFor(["--data", dataDir]), ["serve", ...serveArgs]),
    ],
  },
  {
    // The start task before the launcher, run through `deno task` like the current one (same install step, same
    // direct run of the server with its grants).
    name: "previous deno task start (install --frozen of all packages, then the server)",
    command: (dataDir, serveArgs) => {
      const run = serverRunArgs(grantsFor(["--data", dataDir]), ["serve", ...serveArgs]);
      const quoted = [DENO, ...run].map((arg) => `'${arg}'`).join(" ");
      return [DENO, ["task", "-q", "--eval", `deno install --frozen && ${quoted}`]];
    },
  },
  {
    name: "launcher (main.ts start)",
    command: (_dataDir, serveArgs) => [DENO, ["run", ...LAUNCHER_FLAGS, "main.ts", "start", ...serveArgs]],
  },
  { name: "deno task start", command: (_dataDir, serveArgs) => [DENO, ["task", "-q", "start", ...serveArgs]] },
];

/** Milliseconds from spawn to the first 200 from /version; stops the server after. */
async function startupMs(variant: Variant): Promise<number> {
  const parent = await Deno.makeTempDir({ prefix: "denvex-startup-bench-" });
  const dataDir = `${parent}/data`;
  const port = freePort();
  const serveArgs = ["--data", dataDir, "--port", `${port}`, "--site-port", "0"];
  const [command, args] = variant.command(dataDir, serveArgs);
  const started = performance.now();
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", DENVEX_ADMIN_KEY: "" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (;;) {
      if (performance.now() - started > TIMEOUT_MS) throw new Error(`${variant.name}: no answer in ${TIMEOUT_MS} ms`);
      const ok = await fetch(`http://127.0.0.1:${port}/version`).then(
        (r) => r.body?.cancel().then(() => r.ok),
        () => false,
      );
      if (ok) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(parent, { recursive: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const samples = new Map<string, number[]>(VARIANTS.map((variant) => [variant.name, []]));
for (const variant of VARIANTS) await startupMs(variant); // warm caches (transpile, npm) once each
for (let round = 0; round < ROUNDS; round++) {
  for (const variant of VARIANTS) samples.get(variant.name)!.push(await startupMs(variant));
}
const baseline = median(samples.get(VARIANTS[0].name)!);
for (const variant of VARIANTS) {
  const ms = median(samples.get(variant.name)!);
  console.log(
    `startup_bench: ${variant.name}: ${ms.toFixed(0)} ms to first /version = ${(ms / baseline).toFixed(2)}× baseline`,
  );
}
