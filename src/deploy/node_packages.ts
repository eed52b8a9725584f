/**
 * Push-time preparation of a node deployment folder (`<data>/node/<nodeHash>/`, content-addressed over the node
 * modules and the external packages, so a re-push of the same code reuses it):
 *
 * ```
 * <dir>/package.json     {"dependencies": {<name>: <exact version>}}: the CLI's nodeDependencies
 * <dir>/deno.json        {"nodeModulesDir": "manual"}: the config runners and installs name with --config, so no
 *                        deno.json of a parent folder (a checkout holding the data dir) applies
 * <dir>/node_modules/    installed by `deno install` (hard links into the npm cache, no lifecycle scripts)
 * <dir>/modules/<path>   the pushed node modules and their source maps
 * ```
 *
 * Bundled node modules import external packages by bare name (`import o from "semver"`); a runner started with
 * `--config=<dir>/deno.json` resolves them from `<dir>/node_modules` the way Node would, CommonJS
 * internals included. A fresh folder per push keeps the old code serving until the new one is installed.
 */
import { dirname, join, normalize, resolve, sep } from "node:path";
import { SECRET_ENV_NAMES } from "../environment/mod.ts";
import { nodeConfigPath, type NodeDependency, type NodeModuleConfig } from "../runtime/mod.ts";

/** How long `deno install` may take before the push fails. */
const INSTALL_TIMEOUT_MS = 120_000;
/** npm package names (scoped or not), as npm accepts them. */
const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;
/** Exact versions only: the CLI reports the version it found installed. */
const EXACT_VERSION = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/;

/** A push whose external packages cannot be installed. */
export class NodeInstallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NodeInstallError";
  }
}

/** Where `deno install` runs and caches. */
export interface InstallOptions {
  /** `DENO_DIR` for the install (the per-server npm cache); default: the server's own. */
  denoDir?: string | undefined;
  /** Refuse to reach the registry (a package must already be in the cache). */
  cachedOnly?: boolean;
  timeoutMs?: number;
  /** The `deno` executable to install with (default: the server's own). */
  denoBin?: string;
}

/** Writes `modules` (node environment only) under `<dir>/modules`. Rejects paths that leave the folder. */
export async function writeNodeModules(dir: string, modules: readonly NodeModuleConfig[]): Promise<void> {
  const root = join(dir, "modules");
  for (const module of modules) {
    if (module.environment !== "node") continue;
    const file = normalize(join(root, module.path));
    if (!file.startsWith(root + sep) || !module.path.endsWith(".js")) {
      throw new NodeInstallError(`Invalid module path ${JSON.stringify(module.path)}`);
    }
    await Deno.mkdir(dirname(file), { recursive: true });
    await Deno.writeTextFile(file, module.source);
    if (module.sourceMap) await Deno.writeTextFile(`${file}.map`, module.sourceMap);
  }
}

/**
 * Installs `dependencies` into `<dir>/node_modules` (always writes `package.json`, so bare imports resolve the same
 * with or without external packages). Returns the milliseconds the install took.
 */
export async function installNodeDependencies(
  dir: string,
  dependencies: NodeDependency[],
  options: InstallOptions = {},
): Promise<number> {
  const wanted: Record<string, string> = {};
  for (const { name, version } of dependencies) {
    if (!PACKAGE_NAME.test(name)) throw new NodeInstallError(`Invalid external package name ${JSON.stringify(name)}`);
    if (!EXACT_VERSION.test(version)) {
      throw new NodeInstallError(`External package ${name} has no exact version (${JSON.stringify(version)})`);
    }
    wanted[name] = version;
  }
  await Deno.mkdir(dir, { recursive: true });
  const manifest = { name: "denvex-node-deployment", private: true, dependencies: wanted };
  await Deno.writeTextFile(join(dir, "package.json"), JSON.stringify(manifest, null, 2));
  await Deno.writeTextFile(nodeConfigPath(dir), JSON.stringify({ nodeModulesDir: "manual" }));
  if (dependencies.length === 0) return 0;
  const started = performance.now();
  // The install inherits the server's environment (certificate stores, proxies and registry settings the machine
  // needs to reach npm: with a cleared environment Deno fails on TLS here), minus the server's own secrets. It runs
  // no package code (no lifecycle scripts), only Deno's resolver.
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const secret of SECRET_ENV_NAMES) env[secret] = "";
  if (options.denoDir !== undefined) env.DENO_DIR = options.denoDir;
  // The server may run from a compiled binary, which cannot install: a real deno then (design §3).
  const args = ["install", `--config=${nodeConfigPath(dir)}`, "--node-modules-dir=auto", "--quiet"];
  // No lifecycle scripts: a package's postinstall would run with the server's permissions.
  if (options.cachedOnly) args.push("--cached-only");
  const command = new Deno.Command(options.denoBin ?? Deno.execPath(), {
    args,
    cwd: dir,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? INSTALL_TIMEOUT_MS),
  });
  const output = await command.output();
  if (!output.success) {
    const detail = new TextDecoder().decode(output.stderr).trim();
    const list = dependencies.map((dependency) => `${dependency.name}@${dependency.version}`).join(", ");
    throw new NodeInstallError(`Failed to install external packages (${list}): ${detail || `exit ${output.code}`}`);
  }
  return performance.now() - started;
}

/**
 * The push error of a server started with `--node-packages=off` when the push names external packages, or null when
 * it names none. The CLI bundles every package convex.json does not list, so dropping the list is the way out.
 */
export function externalPackagesRefusal(dependencies: readonly NodeDependency[]): string | null {
  if (dependencies.length === 0) return null;
  const list = dependencies.map(({ name, version }) => `${name}@${version}`).join(", ");
  return `This server does not install external packages for "use node" actions (it runs with --node-packages=off), ` +
    `but the push lists ${list} (convex.json node.externalPackages). Remove them from externalPackages so the CLI ` +
    `bundles them into the modules, or ask the server's operator to allow package installs.`;
}

/** Where node deployment folders live. */
export function nodeRoot(dataDir: string): string {
  return join(resolve(dataDir), "node");
}

/** A node deployment folder ready for runners. */
export interface PreparedNodeDir {
  dir: string;
  nodeHash: string;
}

/**
 * Writes the node modules and installs `dependencies` into `<data>/node/<nodeHash>/`, where nodeHash covers both (an
 * existing complete folder is reused). The npm cache is `<data>/node/npm-cache`. Throws NodeInstallError (and removes
 * the half-written folder) when a path is invalid or a package cannot be installed.
 */
export async function prepareNodeDir(
  dataDir: string,
  modules: readonly NodeModuleConfig[],
  dependencies: NodeDependency[],
  options: InstallOptions = {},
): Promise<PreparedNodeDir> {
  const nodeHash = await nodeDirHash(modules, dependencies);
  const dir = join(nodeRoot(dataDir), nodeHash);
  const doneMarker = join(dir, ".complete");
  if (await exists(doneMarker)) return { dir, nodeHash };
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  try {
    await writeNodeModules(dir, modules);
    await installNodeDependencies(dir, dependencies, { denoDir: join(nodeRoot(dataDir), "npm-cache"), ...options });
    await Deno.writeTextFile(doneMarker, "");
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  return { dir, nodeHash };
}

async function nodeDirHash(modules: readonly NodeModuleConfig[], dependencies: NodeDependency[]): Promise<string> {
  const parts = [...modules].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
    .map((module) => [module.path, module.source, module.sourceMap ?? ""]);
  const deps = [...dependencies].map(({ name, version }) => `${name}@${version}`).sort();
  const bytes = new TextEncoder().encode(JSON.stringify({ parts, deps }));
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toHex().slice(0, 32);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
