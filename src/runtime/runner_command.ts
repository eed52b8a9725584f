/**
 * The command line of a runner process: the server's own executable in runner mode, with only the permissions a
 * runner needs. Built from `Deno.execPath()` and `import.meta.url` so it works from a checkout (`deno run … main.ts
 * runner`) and from a compiled binary (`denvex runner`, whose permissions and flags were fixed at compile time).
 */
import { posix } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import type { PersistenceLocation } from "../persistence/types.ts";
import type { RunnerKind } from "./runner_protocol.ts";

/** The `PG*` variables postgres.js reads (platform-notes.md). */
export const POSTGRES_ENV_NAMES = [
  "PGHOST",
  "PGPORT",
  "PGUSER",
  "PGUSERNAME",
  "PGPASSWORD",
  "PGDATABASE",
  "PGSSL",
  "PGSSLNEGOTIATION",
  "PGIDLE_TIMEOUT",
  "PGCONNECT_TIMEOUT",
  "PGMAX_LIFETIME",
  "PGMAX_PIPELINE",
  "PGBACKOFF",
  "PGKEEP_ALIVE",
  "PGPREPARE",
  "PGDEBUG",
  "PGFETCH_TYPES",
  "PGPUBLICATIONS",
  "PGTARGET_SESSION_ATTRS",
  "PGAPPNAME",
  "PGTARGETSESSIONATTRS",
];

/** What a runner command depends on. */
export interface RunnerCommandOptions {
  kind: RunnerKind;
  modulesDir: string;
  location: PersistenceLocation;
  maxHeapMb: number;
  /** The module to run and its arguments; default `main.ts runner` of this checkout. */
  entry?: { module: URL; args: string[] };
  /** Network the action runner may reach: "all", or host[:port] names. Ignored for transaction runners. */
  actionNet: "all" | string[];
}

/** The command, arguments and working directory of a runner process. */
export interface RunnerCommand {
  command: string;
  args: string[];
  cwd?: string;
  /** Extra environment variables (added to the inherited ones). */
  env?: Record<string, string>;
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
  if (isCompiledBinary()) {
    // Permissions were fixed at compile time; the heap cap still applies through the environment.
    return {
      command: Deno.execPath(),
      args: [...entry.args],
      env: { DENO_V8_FLAGS: `--max-old-space-size=${options.maxHeapMb}` },
    };
  }

  const projectRoot = new URL("../../", import.meta.url);
  // The runner loads the worker bootstrap (src/runtime/**) with its own read permission; user code reads only the
  // modules folder (worker permission), so a dynamic import of anything else fails.
  const read = [options.modulesDir, fromFileUrl(new URL(".", import.meta.url))];
  const flags = ["--cached-only", "--unstable-worker-options", "--no-prompt"];
  const configPath = fromFileUrl(new URL("deno.json", projectRoot));
  flags.push(`--config=${configPath}`);
  if (options.kind === "transaction") {
    if (options.location.kind === "sqlite") {
      const path = posix.resolve(options.location.path);
      // The reader opens the database read-only: read access to the file and its WAL companions is enough. Only
      // these files, not the data folder, which also holds the admin key.
      read.push(path, `${path}-wal`, `${path}-shm`, `${path}-journal`);
    } else {
      const url = new URL(options.location.url);
      flags.push(`--allow-net=${url.hostname}:${url.port || "5432"}`);
      flags.push(`--allow-env=${POSTGRES_ENV_NAMES.join(",")}`);
    }
  } else {
    if (options.actionNet === "all") flags.push("--allow-net");
    else if (options.actionNet.length > 0) flags.push(`--allow-net=${options.actionNet.join(",")}`);
    if (options.location.kind === "postgres") {
      // Actions may fetch, but never talk to the deployment's own database behind the engine's back.
      const url = new URL(options.location.url);
      flags.push(`--deny-net=${url.hostname}:${url.port || "5432"}`);
    }
  }
  flags.push(`--allow-read=${read.join(",")}`);
  flags.push(`--v8-flags=--max-old-space-size=${options.maxHeapMb}`);
  return {
    command: Deno.execPath(),
    args: ["run", ...flags, fromFileUrl(entry.module), ...entry.args],
    cwd: fromFileUrl(projectRoot),
  };
}
