/**
 * The launcher behind `deno task start`: Deno fixes a process's permissions before the program reads its flags, so
 * the task runs this small program with no grant but `--allow-run`; it reads the flags that name paths, then starts
 * the real server (`deno run … main.ts <the same arguments>`) with exactly the grants those flags need: read/write on
 * the data directory named by `--data` (and the backup directory, the `--admin-key-file`, a restore's ZIP), the
 * network, the environment variables the server reads, and its own executable for runner processes. It forwards
 * SIGINT/SIGTERM and exits with the server's exit code.
 *
 * The launcher drops its own `--allow-run` as soon as the server is spawned. It leaves every other check to the
 * server, which refuses bad flags (exit 2) before it opens anything: so the launcher loads none of the server's
 * modules and costs a bare Deno start-up. A new flag that names a path the server reads or writes must be added to
 * `PATH_OPTIONS` here.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SERVER_ENV_NAMES } from "../environment/mod.ts";
import { DEFAULT_DATA_DIR } from "./defaults.ts";
import { VERSION_TEXT } from "./version.ts";

export { SERVER_ENV_NAMES };

const PROJECT_ROOT = new URL("../../", import.meta.url);
/**
 * The server's own lockfile: only the packages main.ts's module graph uses (not the test tooling in deno.lock), so
 * a start installs and loads those alone. `deno task lock-server` refreshes it after the server's imports change.
 */
export const SERVER_LOCK_PATH = fileURLToPath(new URL("src/server/deno.lock", PROJECT_ROOT));

/**
 * Flags every `deno run` of the server's module graph takes (the launcher, the server, the runners): the server's
 * lockfile, packages from Deno's global cache (no node_modules folder holding test tooling), nothing downloaded.
 * The task's `deno install` step before them brings the lock and the cache up to date (offline and silent when they
 * already are).
 */
export const SERVER_DEPENDENCY_FLAGS: readonly string[] = [
  `--lock=${SERVER_LOCK_PATH}`,
  "--node-modules-dir=none",
  "--cached-only",
];

/**
 * V8's young generation of the server process, per semi-space, in MiB (issue 14). V8's default lets it grow to
 * 32 MiB per semi-space under load and keeps it, and the ArrayBuffers its dead objects hold wait for the rare
 * scavenge. footprint_bench (server + 2 runners, PSS; 2-3 runs each, 2 cores shared with other work):
 *
 * | semi-space MiB          | default (32) | 8       | 4       | 2       | 1       |
 * | after 10,000 queries    | 309–322      | 240–243 | 217–230 | 275–278 | 275–277 |
 * | 10,000 live subscribers | 372–373      | 301–314 | 275–284 | 306     | 303–308 |
 *
 * (1 and 2 promote in-flight objects early, which grows the old space.) A smaller nursery means more scavenges
 * (per 1,000 calls: ~0–7 with the default, 16 with 8, 24 with 4, 55 with 2, 110 with 1), whose pause time (V8
 * --trace-gc) came to ~0–60 µs per call with the default, 55–63 with 8, 60–97 with 4, 120–200 with 2 and 120–350
 * with 1, against ~900 µs of server CPU per call.
 */
export const SERVER_MAX_SEMI_SPACE_MIB = 4;

/**
 * The V8 flags of every server process: `deno task start` and the container (both through this launcher), the
 * compiled binary (scripts/compile.ts) and the servers tests start (tests/helpers/server_child.ts). `--expose-gc`
 * lets the sync hub ask for one full collection after a wave of disconnects (src/sync/heap_release.ts); user code
 * never runs in the server, and a worker deletes `gc` before loading any (a compiled binary's runners share its flags).
 */
export const SERVER_V8_FLAGS = `--max-semi-space-size=${SERVER_MAX_SEMI_SPACE_MIB},--expose-gc`;

/** What the server process may touch, derived from one command line. */
export interface ServerGrants {
  read: string[];
  write: string[];
}

/** Exit code for a child that died of a signal, as shells report it: 128 + the signal number. */
const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
const FORWARDED_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
/** Under `deno task dev`: how long a stopping server gets before the watcher process is ended (its shutdown: ≤ 8 s). */
const WATCH_STOP_GRACE_MS = 9_000;

/** A path that cannot be granted (Deno's permission lists are comma-separated). */
export class LaunchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError"; // main.ts reports it like the server's usage errors: one line, exit 2
  }
}

/**
 * Runs `args` (a denvex command line) in a server process with the grants it needs; resolves with its exit code.
 * `watch` restarts the server on source changes (`deno task dev`).
 */
export async function launch(args: readonly string[], watch: boolean): Promise<number> {
  if (asksForVersion(args)) {
    console.log(VERSION_TEXT);
    return 0;
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: serverRunArgs(grantsFor(args), args, { watch }),
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // At once, before any await: a signal arriving now must reach the server, not end the launcher.
  const forwarding = forwardSignals(child, watch);
  try {
    // The server is the only process the launcher ever starts.
    await Deno.permissions.revoke({ name: "run" });
    const status = await child.status;
    // Under --watch, Deno's watcher outlives a server that stopped on request; the launcher ended it (see below).
    if (forwarding.stopRequested && watch) return 0;
    return status.signal === null ? status.code : 128 + (SIGNAL_NUMBERS[status.signal] ?? 0);
  } finally {
    forwarding.dispose();
  }
}

/** The flags that name paths (parsed as the server parses them: `--x v` or `--x=v`, the last one wins). */
const PATH_OPTIONS = {
  data: { type: "string" },
  "admin-key-file": { type: "string" },
  "backup-dir": { type: "string" },
  version: { type: "boolean", short: "V" },
} as const;

/** The paths the command line `args` reads and writes, absolute. Everything else is the server's to check. */
export function grantsFor(args: readonly string[]): ServerGrants {
  const [first, ...rest] = args;
  const command = first === undefined || first.startsWith("-") ? "serve" : first;
  const flags = command === "serve" && first !== "serve" ? args : command === "restore" ? rest.slice(1) : rest;
  const values = pathFlags(flags);
  const dataDir = absolute(values.data ?? DEFAULT_DATA_DIR);
  if (command === "admin-key") return { read: [dataDir], write: [] };
  const read = [dataDir];
  const write = [dataDir];
  if (values["admin-key-file"] !== undefined) read.push(absolute(values["admin-key-file"]));
  if (values["backup-dir"] !== undefined) {
    read.push(absolute(values["backup-dir"]));
    write.push(absolute(values["backup-dir"]));
  }
  if (command === "restore" && rest[0] !== undefined && !rest[0].startsWith("-")) read.push(absolute(rest[0]));
  return { read, write };
}

/** `--version`/`-V` where the server would print the version (top level or serve's flags). */
function asksForVersion(args: readonly string[]): boolean {
  const [first] = args;
  if (first !== undefined && first !== "serve" && !first.startsWith("-")) return false;
  return pathFlags(first === "serve" ? args.slice(1) : args).version === true;
}

function pathFlags(
  args: readonly string[],
): { data?: string; "admin-key-file"?: string; "backup-dir"?: string; version?: boolean } {
  // Not strict: the other flags and their values are the server's, which reports any mistake in them.
  const { values } = parseArgs({ args: [...args], options: PATH_OPTIONS, strict: false, allowPositionals: true });
  const text = (value: unknown) => typeof value === "string" && value !== "" ? value : undefined;
  return {
    ...(text(values.data) === undefined ? {} : { data: text(values.data)! }),
    ...(text(values["admin-key-file"]) === undefined ? {} : { "admin-key-file": text(values["admin-key-file"])! }),
    ...(text(values["backup-dir"]) === undefined ? {} : { "backup-dir": text(values["backup-dir"])! }),
    ...(values.version === true ? { version: true } : {}),
  };
}

/** The `deno` arguments that run `main.ts <args>` with `grants` (plus the network, env and runner grants). */
export function serverRunArgs(
  grants: ServerGrants,
  args: readonly string[],
  options: { watch?: boolean } = {},
): string[] {
  const flags = [
    ...(options.watch ? ["--watch"] : []),
    `--config=${fileURLToPath(new URL("deno.json", PROJECT_ROOT))}`,
    ...SERVER_DEPENDENCY_FLAGS,
    "--unstable-worker-options",
    "--no-prompt",
    `--v8-flags=${SERVER_V8_FLAGS}`,
    "--allow-net",
    "--allow-sys=networkInterfaces",
    `--allow-env=${SERVER_ENV_NAMES.join(",")}`,
    serverRunGrant(args),
  ];
  if (grants.read.length > 0) flags.push(`--allow-read=${grants.read.map(grantablePath).join(",")}`);
  if (grants.write.length > 0) flags.push(`--allow-write=${grants.write.map(grantablePath).join(",")}`);
  return ["run", ...flags, fileURLToPath(new URL("main.ts", PROJECT_ROOT)), ...args];
}

/**
 * The server's `--allow-run` for the command line `args`: its own executable (runner processes) and, unless
 * `--no-pin-runners`, on Linux where util-linux's `taskset` is installed, that (src/runtime/cpu_affinity.ts). Running a
 * program already lets the server start any other through its own executable, so naming `taskset` grants nothing new.
 */
export function serverRunGrant(args: readonly string[]): string {
  const taskset = !args.includes("--no-pin-runners") && tasksetInstalled();
  return `--allow-run=${[Deno.execPath(), ...(taskset ? ["taskset"] : [])].join(",")}`;
}

let tasksetFound: boolean | null = null;

/** Whether `taskset` runs here (asked once; Deno would otherwise log that it cannot resolve the name it is granted). */
function tasksetInstalled(): boolean {
  if (tasksetFound !== null) return tasksetFound;
  tasksetFound = false;
  if (Deno.build.os === "linux") {
    try {
      tasksetFound = new Deno.Command("taskset", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success;
    } catch {
      // Not installed, or not allowed to run it: runners stay unpinned.
    }
  }
  return tasksetFound;
}

function absolute(path: string): string {
  return resolve(Deno.cwd(), path);
}

/** Deno's permission lists are comma-separated: a path with a comma cannot be granted. */
function grantablePath(path: string): string {
  if (path.includes(",")) throw new LaunchError(`cannot grant access to a path containing a comma: ${path}`);
  return path;
}

/**
 * Passes stop signals on to the server, which shuts down gracefully (a terminal's Ctrl-C reaches both processes; the
 * server treats the copy that arrives right after as the same request).
 */
function forwardSignals(child: Deno.ChildProcess, watch: boolean): { stopRequested: boolean; dispose(): void } {
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const state = { stopRequested: false, dispose: () => {} };
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
      // `deno run --watch` keeps waiting for file changes after the server shut down: end it once the server has had
      // its graceful shutdown time.
      if (watch && !state.stopRequested) killTimer = setTimeout(() => killQuietly(child), WATCH_STOP_GRACE_MS);
      state.stopRequested = true;
    };
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  state.dispose = () => {
    clearTimeout(killTimer);
    handlers.forEach(({ signal, handler }) => Deno.removeSignalListener(signal, handler));
  };
  return state;
}

function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch { /* already exited */ }
}
