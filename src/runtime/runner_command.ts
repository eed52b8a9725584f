/**
 * The command line of a runner process: the server's own executable in runner mode, with only the permissions a
 * runner needs. Built from `Deno.execPath()` and `import.meta.url` so it works from a checkout (`deno run … main.ts
 * runner`) and from a compiled binary (`denvex runner`, whose permissions and flags were fixed at compile time).
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { posix } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { MYSQL_ENV_NAMES, POSTGRES_ENV_NAMES, SECRET_ENV_NAMES } from "../environment/mod.ts";
import type { PersistenceLocation } from "../persistence/mod.ts";
import { type ActionNetPolicy, encodePolicyArg, resolveActionNetPolicy } from "./net_policy/mod.ts";
import type { RunnerKind } from "./runner_protocol.ts";
import { RUNNER_SOCKET_ARG_PREFIX } from "./runner_socket.ts";
import type { ActionNetOptions } from "./types.ts";

/** Default ports, when the database URL names none. */
const DEFAULT_DATABASE_PORTS = { postgres: 5432, mysql: 3306 } as const;
/**
 * V8's young generation per semi-space, in MiB (issue 14). By default it grows to 16 MiB under load and is rarely
 * given back, which kept ~20 MiB per runner after a burst; calls allocate little that survives, so a small nursery
 * costs more frequent but cheap scavenges. (Runners once also had `--optimize-for-size`, which sets this to 1 MiB
 * whatever the flag says: the worker then ran ~215 scavenges a second under call_path_bench's insert load.)
 */
export const RUNNER_MAX_SEMI_SPACE_MIB = 2;
/**
 * glibc's malloc arenas per runner process. By default a process gets up to 8 per core as its threads contend, and each
 * keeps the memory freed into it; a runner's allocating threads are few (main, worker, V8's helpers). With this and
 * `--optimize-for-size` (since dropped, see runnerV8Flags), the two transaction runners that 10,000 live subscriptions
 * keep busy held 146–151 MiB PSS instead of 174 (scripts/bench/footprint_bench.ts, issue 14); the arena cap alone,
 * ~11 MiB of that.
 * The server was measured with the same cap too, and showed no difference beyond noise: it is left at the default.
 */
export const RUNNER_MALLOC_ARENA_MAX = "2";

/** What a runner command depends on. */
export interface RunnerCommandOptions {
  kind: RunnerKind;
  modulesDir: string;
  location: PersistenceLocation;
  maxHeapMb: number;
  /** The module to run and its arguments; default `main.ts runner` of this checkout. */
  entry?: { module: URL; args: string[] } | undefined;
  /** What an action runner may reach (net_policy/); null for transaction runners, whose workers have no network. */
  actionNet: ActionNetPolicy | null;
  /** The folder of the runners' sockets (runner_socket.ts): the runner connects to its own socket there. */
  socketDir: string;
}

/** The command, arguments and working directory of a runner process. */
export interface RunnerCommand {
  command: string;
  /** The arguments of the runner that connects to the socket at `socketPath` (runner_socket.ts). */
  args(socketPath: string): string[];
  cwd?: string;
  /** Environment variables set over the inherited ones (the server's secrets blanked, see `runnerEnv`). */
  env: Record<string, string>;
}

/** The default entry: the server's `main.ts` in runner mode. */
export function defaultRunnerEntry(): { module: URL; args: string[] } {
  return { module: new URL("../../main.ts", import.meta.url), args: ["runner"] };
}

/** True when running from a `deno compile` binary rather than `deno run`. */
export function isCompiledBinary(): boolean {
  const exe = posix.basename(Deno.execPath());
  return exe !== "deno" && exe !== "deno.exe";
}

/** Builds the runner command for `options`. */
export function runnerCommand(options: RunnerCommandOptions): RunnerCommand {
  const entry = options.entry ?? defaultRunnerEntry();
  // The worker's guard reads the policy from the process arguments (net_policy/runner_arg.ts).
  const policyArgs = options.kind === "action" && options.actionNet !== null
    ? [encodePolicyArg(options.actionNet)]
    : [];
  if (isCompiledBinary()) {
    // Permissions were fixed at compile time (no --deny-net): the worker's guard enforces the whole policy then.
    // The heap cap still applies through the environment.
    return {
      command: Deno.execPath(),
      args: (socketPath) => [...entry.args, ...policyArgs, RUNNER_SOCKET_ARG_PREFIX + socketPath],
      env: { ...runnerEnv(options), DENO_V8_FLAGS: runnerV8Flags(options.maxHeapMb) },
    };
  }

  const projectRoot = new URL("../../", import.meta.url);
  // The runner loads the worker bootstrap (src/runtime/**, and the pure component model it resolves addresses with,
  // src/components and src/errors)
  // with its own read permission; user code reads only the modules folder (worker permission), so a dynamic import of
  // anything else fails.
  const read = [
    options.modulesDir,
    fromFileUrl(new URL(".", import.meta.url)),
    fromFileUrl(new URL("../components/", import.meta.url)),
    fromFileUrl(new URL("../errors/", import.meta.url)),
  ];
  // The server's own lockfile and Deno's global cache, as the server runs (src/server/launcher.ts): no node_modules.
  const flags = [
    "--cached-only",
    "--unstable-worker-options",
    "--no-prompt",
    "--node-modules-dir=none",
    `--lock=${fromFileUrl(new URL("../server/deno.lock", import.meta.url))}`,
  ];
  const configPath = fromFileUrl(new URL("deno.json", projectRoot));
  flags.push(`--config=${configPath}`);
  /** The hosts a transaction runner reaches (its database server); "all" for action runners (minus the policy). */
  let netHosts: string[] | "all" = [];
  if (options.kind === "transaction") {
    if (options.location.kind === "sqlite") {
      const path = posix.resolve(options.location.path);
      // The reader opens the database read-only: read access to the file and its WAL companions is enough. Only
      // these files, not the data folder, which also holds the admin key.
      read.push(path, `${path}-wal`, `${path}-shm`, `${path}-journal`);
    } else {
      const { kind } = options.location;
      const url = new URL(options.location.url);
      netHosts = [`${url.hostname}:${url.port || DEFAULT_DATABASE_PORTS[kind]}`];
      flags.push(`--allow-env=${(kind === "postgres" ? POSTGRES_ENV_NAMES : MYSQL_ENV_NAMES).join(",")}`);
    }
  } else if (options.actionNet !== null) {
    // The public internet, minus the policy's addresses: Deno checks the resolved address of every connect, fetch
    // and listen against --deny-net, and a deny wins over the allow.
    netHosts = "all";
    if (options.actionNet.denyNet.length > 0) flags.push(`--deny-net=${options.actionNet.denyNet.join(",")}`);
  }
  // Connecting to a Unix socket takes read and write permission on its path and net permission for it (`unix:<path>`);
  // only the main thread has them (the worker's permissions are its own, user_worker.ts).
  read.push(options.socketDir);
  flags.push(`--allow-read=${read.join(",")}`);
  flags.push(`--allow-write=${options.socketDir}`);
  flags.push(`--v8-flags=${runnerV8Flags(options.maxHeapMb)}`);
  const hosts = netHosts;
  return {
    command: Deno.execPath(),
    args: (socketPath) => [
      "run",
      ...flags,
      hosts === "all" ? "--allow-net" : `--allow-net=${[...hosts, `unix:${socketPath}`].join(",")}`,
      fromFileUrl(entry.module),
      ...entry.args,
      ...policyArgs,
      RUNNER_SOCKET_ARG_PREFIX + socketPath,
    ],
    cwd: fromFileUrl(projectRoot),
    env: runnerEnv(options),
  };
}

/**
 * The server's secrets blanked for a runner: none of its code needs the admin key, the S3 credentials or the database
 * URL (the URL comes in its init message), so even code that escaped a worker's permissions finds none of them. A
 * transaction runner keeps its driver's password variable, which it may need to connect.
 */
function runnerEnv(options: RunnerCommandOptions): Record<string, string> {
  const { kind, location } = options;
  const driverNames = kind !== "transaction" || location.kind === "sqlite"
    ? []
    : location.kind === "postgres"
    ? POSTGRES_ENV_NAMES
    : MYSQL_ENV_NAMES;
  const env: Record<string, string> = {};
  for (const name of SECRET_ENV_NAMES) if (!driverNames.includes(name)) env[name] = "";
  env.MALLOC_ARENA_MAX = RUNNER_MALLOC_ARENA_MAX;
  return env;
}

/**
 * The V8 flags of a runner: its heap cap and a small young generation. Not `--optimize-for-size`, which runners had
 * for a while: it favours memory over speed (and sets a 1 MiB young generation), and once an interleaved A/B could
 * tell, it cost a busy runner ~8–10 % of the CPU per call (call_path_ab, 20 pairs, without it: queries 1.09× the
 * calls/s at 0.92× the CPU per call, inserts 1.10× at 0.90×) for 12–16 MiB of PSS under load and none idle
 * (footprint_bench: idle 147 → 146 MiB, after 10,000 queries 172 → 184, with 10,000 live subscriptions 232 → 245;
 * every goal still met).
 */
function runnerV8Flags(maxHeapMb: number): string {
  return `--max-old-space-size=${maxHeapMb},--max-semi-space-size=${RUNNER_MAX_SEMI_SPACE_MIB}`;
}

/**
 * The action network policy (shared by action and node runners): names (allowed hosts, the database host) are resolved
 * now, and the server's ports awaited when they are a promise.
 */
export async function actionNetPolicy(location: PersistenceLocation, net: ActionNetOptions): Promise<ActionNetPolicy> {
  // Every server database is denied to actions, whichever kind (SQLite is a file, which they cannot read).
  const database = location.kind === "sqlite" ? null : {
    host: new URL(location.url).hostname,
    port: Number(new URL(location.url).port || DEFAULT_DATABASE_PORTS[location.kind]),
  };
  return await resolveActionNetPolicy({
    allowHosts: net.allowHosts ?? [],
    database,
    serverPorts: await (net.serverPorts ?? []),
  });
}
