/**
 * Bundling the dashboard's client in a short-lived child process: the server's own executable in its hidden
 * `dashboard-build` mode (`deno run … main.ts dashboard-build` from a checkout, `denvex dashboard-build` compiled),
 * which writes the bundle to its stdout and exits.
 *
 * Why a process: esbuild-wasm's Go heap grows to what a build needs and a wasm memory never shrinks; in the server's
 * isolate (or a worker of it) a build raised the server's RSS by 70–140 MB that came back slowly if at all. A process
 * returns all of it to the OS when it exits. It also lets the build use V8 flags the server must not: `--liftoff-only`
 * skips optimising esbuild's 14 MB of wasm, which costs more CPU than one build saves (measured: ~0.3 s of CPU
 * instead of ~1.1 s).
 *
 * The child gets no permission: its sources, esbuild and its wasm are modules of the server's graph (embedded in a
 * compiled binary), and the bundle goes to stdout, so the server writes the cache (and serves the bundle from memory
 * when it cannot). A compiled binary's permissions are fixed at build time, so the child revokes them all first.
 */
import { basename } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { SECRET_ENV_NAMES } from "../environment/mod.ts";
import { bundleSources } from "./_bundle_sources.ts";

/** The hidden command (main.ts) that runs {@link dashboardBuildMain}. */
export const DASHBOARD_BUILD_COMMAND = "dashboard-build";
/** Longest a build may take before the child is killed and the build counts as failed. */
export const CHILD_BUILD_TIMEOUT_MS = 60_000;
/** The most bundle bytes the server reads from a child (the bundle is ~60 KB; anything near this is a fault). */
export const MAX_BUNDLE_BYTES = 8 * 1024 * 1024;
/** The end of the child's stderr kept for the error message of a failed build. */
const STDERR_TAIL_BYTES = 4 * 1024;
/**
 * The child's V8 flags: Liftoff only (no optimising tier for one build), and a heap cap. The child's own JS heap is
 * small; esbuild's memory is wasm, outside it.
 */
const CHILD_V8_FLAGS = "--liftoff-only,--max-old-space-size=256";
/** Every permission a compiled binary may hold; the child drops them before it loads anything. */
const DROPPED_PERMISSIONS: readonly Deno.PermissionName[] = ["read", "write", "net", "env", "run", "sys", "ffi"];

const PROJECT_ROOT = new URL("../../", import.meta.url);

/** The command line of a bundling child. */
export interface ChildBuildCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** True when this process is a `deno compile` executable rather than the `deno` CLI running a checkout. */
function isCompiledBinary(): boolean {
  const name = basename(Deno.execPath());
  return name !== "deno" && name !== "deno.exe";
}

/** The child's command: the server's own executable, with no grant, on the server's lockfile and Deno's cache. */
export function childBuildCommand(): ChildBuildCommand {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of SECRET_ENV_NAMES) env[name] = "";
  if (isCompiledBinary()) {
    return {
      command: Deno.execPath(),
      args: [DASHBOARD_BUILD_COMMAND],
      env: { ...env, DENO_V8_FLAGS: CHILD_V8_FLAGS },
    };
  }
  const args = [
    "run",
    `--config=${fromFileUrl(new URL("deno.json", PROJECT_ROOT))}`,
    `--lock=${fromFileUrl(new URL("src/server/deno.lock", PROJECT_ROOT))}`,
    "--node-modules-dir=none",
    "--cached-only",
    "--no-prompt",
    `--v8-flags=${CHILD_V8_FLAGS}`,
    fromFileUrl(new URL("main.ts", PROJECT_ROOT)),
    DASHBOARD_BUILD_COMMAND,
  ];
  return { command: Deno.execPath(), args, env };
}

/** Whether this process may start the bundling child (the server is granted its own executable). */
export function mayStartChild(): boolean {
  return Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";
}

/** Limits of one child build (tests make them small). */
export interface ChildBuildLimits {
  timeoutMs?: number;
  maxBytes?: number;
}

/**
 * Bundles the client in a child process and resolves with the bundle. Rejects (with the end of the child's stderr)
 * when the child fails, exceeds `maxBytes` of output or `timeoutMs`; the child is killed then.
 */
export async function bundleInChild(
  limits: ChildBuildLimits = {},
  command: ChildBuildCommand = childBuildCommand(),
): Promise<Uint8Array> {
  const timeoutMs = limits.timeoutMs ?? CHILD_BUILD_TIMEOUT_MS;
  const maxBytes = limits.maxBytes ?? MAX_BUNDLE_BYTES;
  const child = new Deno.Command(command.command, {
    args: command.args,
    env: command.env,
    // Never written: the child exits when it reads end-of-file, i.e. when this process goes away (see below).
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let failure: string | null = null;
  const kill = (why: string) => {
    failure ??= why;
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  };
  const timer = setTimeout(() => kill(`took longer than ${timeoutMs} ms`), timeoutMs);
  try {
    const [js, stderr, status] = await Promise.all([
      readAtMost(child.stdout, maxBytes, () => kill(`wrote more than ${maxBytes} bytes`)),
      readTail(child.stderr, STDERR_TAIL_BYTES),
      child.status,
    ]);
    if (failure !== null) throw new Error(`bundling the dashboard failed: the build ${failure}`);
    if (!status.success || js.length === 0) {
      const detail = stderr.trim() || `exit code ${status.code}${status.signal ? `, ${status.signal}` : ""}`;
      throw new Error(`bundling the dashboard failed: ${detail}`);
    }
    return js;
  } finally {
    clearTimeout(timer);
    await child.stdin.close().catch(() => {});
  }
}

/** Reads `stream` whole unless it exceeds `maxBytes`: then calls `onOver`, stops reading and returns what it has. */
async function readAtMost(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  onOver: () => void,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    if (total > maxBytes) {
      onOver();
      break; // cancels the stream
    }
    chunks.push(chunk);
  }
  const out = new Uint8Array(Math.min(total, maxBytes));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out.subarray(0, offset);
}

/** The last `maxBytes` of `stream`, as text. */
async function readTail(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<string> {
  let tail = new Uint8Array(0);
  for await (const chunk of stream) {
    const joined = new Uint8Array(tail.length + chunk.length);
    joined.set(tail);
    joined.set(chunk, tail.length);
    tail = joined.subarray(Math.max(0, joined.length - maxBytes));
  }
  return new TextDecoder().decode(tail);
}

/**
 * The child's side (`main.ts dashboard-build`): drops every permission, bundles, writes the bundle to stdout and
 * resolves with the exit code. Exits at once when its stdin ends: the server that started it has gone, and an
 * orphaned build would only burn CPU.
 */
export async function dashboardBuildMain(): Promise<number> {
  for (const name of DROPPED_PERMISSIONS) await Deno.permissions.revoke({ name });
  void exitWhenStdinEnds();
  try {
    const [esbuild, bundler, sources] = await Promise.all([
      import("esbuild-wasm/esm/browser.js"),
      import("./_esbuild.ts"),
      import("./_sources.ts"),
    ]);
    const js = await bundleSources(esbuild, bundler.ESBUILD_WASM, sources.CLIENT_FILES, sources.PACKAGES);
    for (let offset = 0; offset < js.length;) offset += await Deno.stdout.write(js.subarray(offset));
    return 0;
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
}

async function exitWhenStdinEnds(): Promise<void> {
  const buffer = new Uint8Array(64);
  try {
    while (await Deno.stdin.read(buffer) !== null) { /* the server never writes; ignore */ }
  } catch { /* a closed or missing stdin: the same */ }
  Deno.exit(1);
}
