/**
 * Test helper: `main.ts serve` as a child process with the start task's permissions (data directory swapped for the
 * test's), its stdout and stderr collected, so a test can assert on what the server printed and how it exited.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVER_ENV_NAMES } from "../../src/server/mod.ts";
import { SERVER_V8_FLAGS, serverRunGrant } from "../../src/server/launcher.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const STARTUP_TIMEOUT_MS = 30_000;

/** The `--allow-env` list the start task's launcher grants the server (src/server/launcher.ts). */
export function startTaskEnvList(): Promise<string> {
  return Promise.resolve(SERVER_ENV_NAMES.join(","));
}

/**
 * The `deno` arguments that run `main.ts serve <serveArgs>` with the start task's permissions, its data directory
 * swapped for `dataDir`: the one place tests build the server's command line.
 */
export async function serveCommandArgs(dataDir: string, serveArgs: string[]): Promise<string[]> {
  return [
    "run",
    "--cached-only",
    "--unstable-worker-options",
    "--no-prompt",
    `--v8-flags=${SERVER_V8_FLAGS}`,
    "--allow-net",
    "--allow-sys=networkInterfaces",
    `--allow-read=${dataDir}`,
    `--allow-write=${dataDir}`,
    `--allow-env=${await startTaskEnvList()}`,
    serverRunGrant(serveArgs),
    join(REPO, "main.ts"),
    "serve",
    ...serveArgs,
  ];
}

/** A running (or exited) server child. */
export interface ServerChild {
  readonly pid: number;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Waits for the banner; returns the API origin. Throws with the output if the process exits first. */
  ready(): Promise<string>;
  /** Resolves with the exit code once the process has exited. */
  exited(): Promise<number>;
  /** SIGTERM (or `signal`) and wait. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/**
 * Spawns `main.ts serve --data <dataDir> --port 0 --site-port 0 --host 127.0.0.1 <args>` with `env` (the caller's
 * DENVEX_* variables cleared first).
 */
export async function spawnServerChild(
  dataDir: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<ServerChild> {
  const child = new Deno.Command(Deno.execPath(), {
    args: await serveCommandArgs(dataDir, [
      `--data=${dataDir}`,
      "--port=0",
      "--site-port=0",
      "--host=127.0.0.1",
      ...args,
    ]),
    cwd: REPO,
    env: { NO_COLOR: "1", DENVEX_ADMIN_KEY: "", DENVEX_DB_URL: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const pump = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) output += text;
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exitCode: number | null = null;
  const status = child.status.then(async (s) => {
    await pumps;
    exitCode = s.code;
    return s.code;
  });
  return {
    pid: child.pid,
    output: () => output,
    async ready() {
      const deadline = Date.now() + STARTUP_TIMEOUT_MS;
      for (;;) {
        const match = /API: +(http:\/\/\S+)[\s\S]*admin key: .*\n/.exec(output);
        if (match) return match[1];
        if (exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    exited: () => status,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
      return await status;
    },
  };
}

/**
 * The lines the server printed, without Deno's own notices about its shared caches (another deno process on the
 * machine can make it print "Blocking waiting for file lock on node_modules directory").
 */
export function serverLines(output: string): string[] {
  return output.trimEnd().split("\n").filter((line) => line !== "" && !/^Blocking waiting for file lock/.test(line));
}

/** The pids of `pid`'s descendants (children, grandchildren, ...), from /proc (Linux). */
export async function descendantPids(pid: number): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const status = await Deno.readTextFile(`/proc/${entry.name}/status`).catch(() => "");
    const ppid = /PPid:\s+(\d+)/.exec(status)?.[1];
    if (ppid !== undefined) parentOf.set(Number(entry.name), Number(ppid));
  }
  const found: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const parent = frontier.pop()!;
    for (const [child, ppid] of parentOf) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        frontier.push(child);
      }
    }
  }
  return found;
}

/** A process's environment (`NAME=value` entries, NUL-separated), or null if it has exited since it was listed. */
export async function environmentOf(pid: number): Promise<string | null> {
  try {
    return await Deno.readTextFile(`/proc/${pid}/environ`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** A process's command line as `ps` shows it (NULs as spaces); "" if it has exited. */
export async function commandLineOf(pid: number): Promise<string> {
  const raw = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
  return raw.replaceAll("\0", " ");
}

/** /proc/<pid>/stat counts CPU in clock ticks; Linux's USER_HZ is 100 on every architecture we run on. */
const TICK_US = 10_000;

/** CPU time of a process in µs (user + system), from /proc (Linux); 0 once it is gone. */
export function processCpuUs(pid: number): number {
  const { userUs, systemUs } = processCpuSplitUs(pid);
  return userUs + systemUs;
}

/** CPU time of a process in µs, in its own code (user) and in the kernel on its behalf (system); zeros once gone. */
export function processCpuSplitUs(pid: number): { userUs: number; systemUs: number } {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { userUs: Number(fields[11]) * TICK_US, systemUs: Number(fields[12]) * TICK_US };
  } catch {
    return { userUs: 0, systemUs: 0 };
  }
}

/**
 * Context switches so far, summed over every thread of `pid` (Linux): `voluntary` when a thread blocked (a wait, a
 * read with nothing to read), `involuntary` when it was preempted. Zeros once it is gone.
 */
export function processContextSwitches(pid: number): ContextSwitches {
  const sums = { voluntary: 0, involuntary: 0 };
  let tasks: Deno.DirEntry[];
  try {
    tasks = [...Deno.readDirSync(`/proc/${pid}/task`)];
  } catch {
    return sums; // the process is gone
  }
  for (const task of tasks) {
    // A thread that ended since the listing is skipped; the others still count.
    const status = readTextOrNull(`/proc/${pid}/task/${task.name}/status`);
    if (status === null) continue;
    sums.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    sums.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return sums;
}

/** Context switches of a process's threads: blocked (`voluntary`) and preempted (`involuntary`). */
export interface ContextSwitches {
  voluntary: number;
  involuntary: number;
}

function readTextOrNull(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}
