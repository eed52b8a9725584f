/**
 * The command line of a node runner (the third runner kind, beside transaction and action runners): `deno run` of
 * runner_main.ts under the deployment's deno.json, with only what Node actions need. Reads: the deployment folder
 * (modules and node_modules) and the temp dir; writes: the temp dir; env: the process is started with a cleared
 * environment, so `--allow-env` exposes only what the runner sets; no run, no ffi, no sys; network: everything but the
 * policy's denied addresses (src/runtime/net_policy).
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** Convex's Node action heap. */
export const NODE_MAX_HEAP_MB = 512;

/** What a node runner may touch. */
export interface NodeRunnerSandbox {
  /** The node deployment folder (src/deploy/node_packages.ts writes it at push time). */
  deploymentDir: string;
  /** This runner's temp dir (created by the caller, emptied after each call). */
  tmpDir: string;
  /** `--deny-net` entries (an ActionNetPolicy's `denyNet`); null: no network at all. */
  denyNet: string[] | null;
  maxHeapMb?: number | undefined;
  /** DENO_DIR of the runner (its transpile cache); default: the server's. */
  denoDir?: string | undefined;
}

/** A command to spawn. */
export interface NodeRunnerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** Builds the runner command for `sandbox`. */
export function nodeRunnerCommand(sandbox: NodeRunnerSandbox): NodeRunnerCommand {
  const { deploymentDir, tmpDir } = sandbox;
  const flags = [
    "--cached-only",
    "--no-prompt",
    `--config=${nodeConfigPath(deploymentDir)}`,
    "--node-modules-dir=manual",
    `--allow-read=${deploymentDir},${tmpDir}`,
    `--allow-write=${tmpDir}`,
    "--allow-env",
    `--v8-flags=--max-old-space-size=${sandbox.maxHeapMb ?? NODE_MAX_HEAP_MB}`,
  ];
  if (sandbox.denyNet !== null) {
    flags.push("--allow-net");
    if (sandbox.denyNet.length > 0) flags.push(`--deny-net=${sandbox.denyNet.join(",")}`);
  }
  const env: Record<string, string> = { NO_COLOR: "1", TMPDIR: tmpDir };
  const denoDir = sandbox.denoDir ?? Deno.env.get("DENO_DIR");
  if (denoDir !== undefined) env.DENO_DIR = denoDir;
  else {
    const home = Deno.env.get("HOME");
    if (home !== undefined) env.DENO_DIR = `${home}/.cache/deno`;
  }
  const entry = fileURLToPath(new URL("./runner_main.ts", import.meta.url));
  return { command: Deno.execPath(), args: ["run", ...flags, entry], env };
}

/** The deno.json of a node deployment folder (runners and installs pass it as `--config`). */
export function nodeConfigPath(dir: string): string {
  return join(dir, "deno.json");
}
