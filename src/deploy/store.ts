/**
 * The deployment store: the pushed modules (content-addressed by SHA-256, kept as database globals so they survive
 * with the data), the active deployment (its module list and analysis), and the deployment's environment variables.
 * Activating a deployment is one atomic write of the globals, then an in-memory switch. A deployment holds the app
 * and every component instance below it (`ActiveDeployment.components`): each instance's modules are written under
 * `@components/<encodeURIComponent(path)>/` of the deployment folder (components/layout.ts) and analyzed once per
 * definition. `"use node"` modules of the app are written with their external packages to a node deployment folder
 * (node_packages.ts) and analyzed in a node runner; their functions run there (`ActiveDeployment.nodeDir`).
 */
import { DenvexError } from "../errors/mod.ts";
import type { Database } from "../database/mod.ts";
import { type ActiveDeployment, type ComponentDeployment, indexFunctions } from "../functions/mod.ts";
import { componentModulesSubdir, type ComponentPath, type EnvBinding } from "../components/mod.ts";
import type { JsonValue } from "../values/mod.ts";
import {
  type DeploymentAnalysis,
  type ModuleConfig,
  modulesRoot,
  type NodeDependency,
  type RunnerPool,
  writeDeploymentModules,
} from "../runtime/mod.ts";
import { externalPackagesRefusal, NodeInstallError, nodeRoot, prepareNodeDir } from "./node_packages.ts";

const DEPLOYMENT_GLOBAL = "deployment";
const ENVIRONMENT_GLOBAL = "environment";
const MODULE_GLOBAL_PREFIX = "module:";
/** Module folders of earlier deployments kept on disk besides the active one. */
const KEPT_OLD_MODULE_FOLDERS = 4;
/** Convex's limits on environment variables. */
export const MAX_ENVIRONMENT_VARIABLES = 1_000;
export const MAX_ENVIRONMENT_NAME_LENGTH = 40;
export const MAX_ENVIRONMENT_VALUE_BYTES = 8 * 1024;

/** A module as the store records it in a deployment. */
export interface ModuleRecord {
  path: string;
  environment: "isolate" | "node";
  /** Hex SHA-256 of source followed by source map (the CLI's change-detection hash, convex-compat.md §5.3). */
  sha256: string;
}

/** The persisted description of one component instance of a deployment (not the app). */
export interface ComponentRecord {
  path: ComponentPath;
  /** Where the CLI found its definition (for the CLI's diffs only: it changes when the checkout moves). */
  definitionPath: string;
  modules: ModuleRecord[];
  analysis: DeploymentAnalysis;
  /** How its parent binds its env (`use(…, {env})`), resolved against the parent's env at install. */
  env: [string, EnvBinding][];
  /** Its children, name → path, in `use` order. */
  children: [string, ComponentPath][];
  /** Its HTTP mounts (`use(…, {httpPrefix})`): normalized prefix (`/foo/`) → child name. */
  httpMounts?: [string, string][];
}

/** The persisted description of a deployment. */
interface DeploymentRecord {
  modules: ModuleRecord[];
  analysis: DeploymentAnalysis;
  deploymentHash: string;
  activatedAtMs: number;
  /** The app's children (name → path); absent in records from before components. */
  children?: [string, ComponentPath][];
  /** The app's HTTP mounts: normalized prefix → child name. */
  httpMounts?: [string, string][];
  /** Every mounted instance below the app, parents before children. */
  components?: ComponentRecord[];
  /** Paths of instances once mounted and no longer in the tree: their data is kept, a push may remount them. */
  unmounted?: ComponentPath[];
  /** The node deployment folder's hash and external packages, when the app has `"use node"` modules. */
  node?: NodeRecord;
}

/** What identifies a deployment's node folder (`<data>/node/<nodeHash>`), enough to rebuild it from the modules. */
interface NodeRecord {
  nodeHash: string;
  dependencies: NodeDependency[];
}

/** A component instance written and analyzed with a prepared deployment. */
export interface PreparedComponent extends ComponentRecord {
  sources: ModuleConfig[];
}

/** A deployment written and analyzed but not yet serving. */
export interface PreparedDeployment {
  modules: ModuleConfig[];
  records: ModuleRecord[];
  deploymentDir: string;
  deploymentHash: string;
  analysis: DeploymentAnalysis;
  /** The app's children, name → path. */
  children: [string, ComponentPath][];
  /** The app's HTTP mounts (normalized prefix → child name); the push sets them (and each component's) after `prepare`. */
  httpMounts?: [string, string][];
  /** Every instance below the app, parents before children. */
  components: PreparedComponent[];
  /** The node deployment folder, when the app has `"use node"` modules. */
  node: (NodeRecord & { dir: string }) | null;
}

/** What `prepare` needs of one instance below the app. */
export interface ComponentToPrepare {
  path: ComponentPath;
  definitionPath: string;
  modules: ModuleConfig[];
  env: [string, EnvBinding][];
  children: [string, ComponentPath][];
}

/** The CLI's module hash: hex SHA-256 of `source` followed by `sourceMap` (empty when absent). */
export async function moduleSha256(module: ModuleConfig): Promise<string> {
  const bytes = new TextEncoder().encode(module.source + (module.sourceMap ?? ""));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return digest.toHex();
}

/** An error in what a push sent, shown to the developer as it is. */
export class DeployError extends DenvexError {
  /** `code` is what the CLI prints, e.g. `InvalidModules`; a refused push is the pushed code's fault, a 400. */
  constructor(code: string, message: string) {
    super(code, message, { httpStatus: 400 });
    this.name = "DeployError";
  }
}

/** See the module comment. */
export class DeploymentStore {
  readonly #database: Database;
  readonly #pool: RunnerPool;
  readonly #dataDir: string;
  #active: ActiveDeployment | null = null;
  #record: DeploymentRecord | null = null;
  #environment: Record<string, string> = {};
  readonly #changeListeners = new Set<() => void>();

  private constructor(database: Database, pool: RunnerPool, dataDir: string) {
    this.#database = database;
    this.#pool = pool;
    this.#dataDir = dataDir;
  }

  /** Loads the active deployment and environment from the database (rewriting module files if they are gone). */
  static async open(database: Database, pool: RunnerPool, dataDir: string): Promise<DeploymentStore> {
    const store = new DeploymentStore(database, pool, dataDir);
    const environmentJson = await database.getGlobal(ENVIRONMENT_GLOBAL);
    if (environmentJson) store.#environment = JSON.parse(environmentJson);
    const recordJson = await database.getGlobal(DEPLOYMENT_GLOBAL);
    if (recordJson) {
      const record = JSON.parse(recordJson) as DeploymentRecord;
      const modules = await store.#loadModules(record.modules);
      const componentModules = new Map<string, ModuleConfig[]>();
      for (const component of record.components ?? []) {
        componentModules.set(component.path, await store.#loadModules(component.modules));
      }
      const isolateModules = modules.filter((module) => module.environment !== "node");
      const written = await writeDeploymentModules(dataDir, isolateModules, componentModules);
      let nodeDir: string | null = null;
      if (record.node) {
        const nodeModules = modules.filter((module) => module.environment === "node");
        nodeDir = `${nodeRoot(dataDir)}/${record.node.nodeHash}`;
        try {
          nodeDir = (await prepareNodeDir(dataDir, nodeModules, record.node.dependencies)).dir;
        } catch (error) {
          // The server still starts: isolate functions serve, node calls fail until a push rebuilds the folder.
          console.error(`denvex: rebuilding the node actions folder failed: ${(error as Error).message}`);
        }
      }
      store.#install(record, written.deploymentDir, nodeDir);
    }
    return store;
  }

  /** The deployment serving calls, or null before the first push. */
  get active(): ActiveDeployment | null {
    return this.#active;
  }

  /** The mounted instances below the app of the active deployment (parents first). */
  get componentRecords(): readonly ComponentRecord[] {
    return this.#record?.components ?? [];
  }

  /** Paths of instances once mounted and now unmounted (their data is kept). */
  get unmountedComponents(): readonly ComponentPath[] {
    return this.#record?.unmounted ?? [];
  }

  /** The active deployment's module list (for `get_config_hashes`). */
  get moduleRecords(): ModuleRecord[] {
    return this.#record?.modules ?? [];
  }

  /** The deployment's environment variables (a copy). */
  get environmentVariables(): Record<string, string> {
    return { ...this.#environment };
  }

  /**
   * Applies environment variable changes (a null value deletes), atomically and durably. Throws DeployError for
   * invalid names or values, changing nothing.
   */
  async updateEnvironment(changes: { name: string; value: string | null }[]): Promise<void> {
    const next = { ...this.#environment };
    for (const change of changes) {
      checkEnvironmentName(change.name);
      if (change.value === null) delete next[change.name];
      else {
        if (typeof change.value !== "string") {
          throw new DeployError("InvalidEnvironmentVariable", `The value of ${change.name} must be a string`);
        }
        if (new TextEncoder().encode(change.value).length > MAX_ENVIRONMENT_VALUE_BYTES) {
          throw new DeployError(
            "InvalidEnvironmentVariable",
            `The value of ${change.name} is longer than ${MAX_ENVIRONMENT_VALUE_BYTES} bytes`,
          );
        }
        next[change.name] = change.value;
      }
    }
    if (Object.keys(next).length > MAX_ENVIRONMENT_VARIABLES) {
      throw new DeployError("InvalidEnvironmentVariable", `At most ${MAX_ENVIRONMENT_VARIABLES} variables`);
    }
    await this.#database.setGlobals({ [ENVIRONMENT_GLOBAL]: JSON.stringify(next) });
    this.#environment = next;
    // Components bound to the app's env vars see the new values.
    if (this.#record && this.#active) this.#install(this.#record, this.#active.dir, this.#active.nodeDir);
    this.#notifyChange();
  }

  /** Full module configs for a push: the changed ones as sent, the unchanged ones from the store by hash. */
  async resolveModules(
    changed: ModuleConfig[],
    unchanged: { path: string; environment: "isolate" | "node"; sha256: string }[],
  ): Promise<ModuleConfig[]> {
    const loaded = await this.#loadModules(unchanged);
    return [...changed, ...loaded];
  }

  /**
   * Evaluates one component definition (`convex.config.js` plus the synthetic modules it imports, already rewritten
   * to relative `.js` paths) in a runner, and returns what its default export's `export()` returned.
   */
  async evaluateDefinition(modules: ModuleConfig[]): Promise<JsonValue> {
    const written = await writeDeploymentModules(this.#dataDir, modules);
    try {
      const analysis = await this.#pool.analyze(written.deploymentDir, ["convex.config.js"], {});
      if (analysis.componentDefinition === undefined) throw new Error("convex.config.js has no definition export");
      return analysis.componentDefinition;
    } finally {
      await Deno.remove(written.deploymentDir, { recursive: true }).catch(() => {});
    }
  }

  /**
   * Writes and analyzes a set of modules without making them live. Throws for modules that fail to load. Instances
   * of one definition share their analysis (keyed by `definitionPath`): their modules are the same.
   */
  async prepare(
    modules: ModuleConfig[],
    environment: Record<string, string>,
    children: [string, ComponentPath][] = [],
    components: ComponentToPrepare[] = [],
    nodeDependencies: NodeDependency[] = [],
  ): Promise<PreparedDeployment> {
    const isolateModules = modules.filter((module) => module.environment !== "node");
    const nodeModules = modules.filter((module) => module.environment === "node");
    for (const component of components) {
      const found = component.modules.filter((module) => module.environment === "node");
      if (found.length > 0) {
        throw new DeployError(
          "InvalidModules",
          `"use node" modules inside components are not supported by denvex yet (component ${component.path}: ${
            found.map((module) => module.path).join(", ")
          })`,
        );
      }
    }
    const written = await writeDeploymentModules(
      this.#dataDir,
      isolateModules,
      new Map(components.map((component) => [component.path, component.modules])),
    );
    const analysis = await this.#pool.analyze(
      written.deploymentDir,
      isolateModules.map((module) => module.path),
      environment,
    );
    const node = nodeModules.length > 0 ? await this.#prepareNode(nodeModules, nodeDependencies, environment) : null;
    if (node !== null) analysis.modules.push(...node.modules);
    const analyses = new Map<string, Promise<DeploymentAnalysis>>();
    const prepared: PreparedComponent[] = [];
    for (const component of components) {
      let componentAnalysis = analyses.get(component.definitionPath);
      if (componentAnalysis === undefined) {
        const dir = written.deploymentDir + "/" + componentModulesSubdir(component.path);
        const paths = component.modules.map((module) => module.path);
        componentAnalysis = this.#pool.analyze(dir, paths, {}).catch((error: Error) => {
          throw new DeployError(
            "InvalidModules",
            `Loading the modules of component ${component.path} failed: ${error.message}`,
          );
        });
        analyses.set(component.definitionPath, componentAnalysis);
      }
      prepared.push({
        path: component.path,
        definitionPath: component.definitionPath,
        modules: await moduleRecords(component.modules),
        analysis: await componentAnalysis,
        env: component.env,
        children: component.children,
        sources: component.modules,
      });
    }
    return {
      modules: [...isolateModules, ...nodeModules],
      records: await moduleRecords([...isolateModules, ...nodeModules]),
      deploymentDir: written.deploymentDir,
      deploymentHash: written.deploymentHash,
      analysis,
      children,
      components: prepared,
      node: node === null ? null : { dir: node.dir, nodeHash: node.nodeHash, dependencies: nodeDependencies },
    };
  }

  /**
   * Writes the node folder (modules + external packages) and analyzes its modules in a node runner. Throws DeployError
   * when a package cannot be installed; AnalyzeError (Convex's "Only actions" message) from the analysis.
   */
  async #prepareNode(modules: ModuleConfig[], dependencies: NodeDependency[], environment: Record<string, string>) {
    const unavailable = this.#pool.nodeActionsUnavailable;
    if (unavailable !== null) throw new DeployError("NodeActionsUnsupported", unavailable);
    const refusal = this.#pool.nodeExternalPackages === "off" ? externalPackagesRefusal(dependencies) : null;
    if (refusal !== null) throw new DeployError("NodePackagesDisabled", refusal);
    let prepared;
    try {
      prepared = await prepareNodeDir(this.#dataDir, modules, dependencies);
    } catch (error) {
      if (!(error instanceof NodeInstallError)) throw error;
      const code = error.message.startsWith("Failed to install") ? "NodePackagesInstallFailed" : "InvalidModules";
      throw new DeployError(code, error.message);
    }
    const paths = modules.map((module) => module.path);
    return { ...prepared, modules: await this.#pool.analyzeNode(prepared.dir, paths, environment) };
  }

  /**
   * Makes a prepared deployment the live one: one atomic write, then the switch. `beforeSwitch` runs between the two
   * (the push applies the new catalog there), so the in-memory switch follows the catalog change immediately.
   */
  async activate(prepared: PreparedDeployment, beforeSwitch?: () => Promise<void>): Promise<void> {
    const mounted = new Set(prepared.components.map((component) => component.path));
    const unmounted = new Set([...(this.#record?.unmounted ?? [])]);
    for (const component of this.#record?.components ?? []) unmounted.add(component.path);
    for (const path of mounted) unmounted.delete(path);
    const record: DeploymentRecord = {
      modules: prepared.records,
      analysis: prepared.analysis,
      deploymentHash: prepared.deploymentHash,
      activatedAtMs: Date.now(),
      children: prepared.children,
      ...(prepared.httpMounts === undefined ? {} : { httpMounts: prepared.httpMounts }),
      components: prepared.components.map(({ sources: _sources, ...component }) => component),
      unmounted: [...unmounted],
      ...(prepared.node === null
        ? {}
        : { node: { nodeHash: prepared.node.nodeHash, dependencies: prepared.node.dependencies } }),
    };
    const globals: Record<string, string | null> = { [DEPLOYMENT_GLOBAL]: JSON.stringify(record) };
    for (let i = 0; i < prepared.modules.length; i++) {
      globals[MODULE_GLOBAL_PREFIX + prepared.records[i].sha256] = JSON.stringify(prepared.modules[i]);
    }
    for (const component of prepared.components) {
      for (let i = 0; i < component.sources.length; i++) {
        globals[MODULE_GLOBAL_PREFIX + component.modules[i].sha256] = JSON.stringify(component.sources[i]);
      }
    }
    await this.#database.setGlobals(globals);
    if (beforeSwitch) {
      try {
        await beforeSwitch();
      } catch (error) {
        // Put the previous deployment back on disk, so a restart serves what is still serving now.
        const previous = this.#record ? JSON.stringify(this.#record) : null;
        await this.#database.setGlobals({ [DEPLOYMENT_GLOBAL]: previous });
        throw error;
      }
    }
    this.#install(record, prepared.deploymentDir, prepared.node?.dir ?? null);
    this.#pool.activateNode(prepared.node?.dir ?? null);
    this.#notifyChange();
    await this.#forgetOldDeployments(record).catch((error) => {
      console.error("denvex: removing old deployments failed:", error);
    });
  }

  /**
   * Removes what earlier pushes left behind, so the data grows with the app, not with the number of pushes: module
   * sources no longer in the active deployment (the CLI compares against the active one only), and module folders
   * beyond the newest few (a runner may still lazily import from a just-replaced one, so a few stay).
   */
  async #forgetOldDeployments(active: DeploymentRecord): Promise<void> {
    const keep = new Set(active.modules.map((module) => MODULE_GLOBAL_PREFIX + module.sha256));
    for (const component of active.components ?? []) {
      for (const module of component.modules) keep.add(MODULE_GLOBAL_PREFIX + module.sha256);
    }
    const stale: Record<string, null> = {};
    for (const key of await this.#database.listGlobals(MODULE_GLOBAL_PREFIX)) {
      if (!keep.has(key)) stale[key] = null;
    }
    if (Object.keys(stale).length > 0) await this.#database.setGlobals(stale);
    const root = modulesRoot(this.#dataDir);
    const folders: { path: string; modifiedMs: number }[] = [];
    for await (const entry of Deno.readDir(root)) {
      if (!entry.isDirectory || entry.name.startsWith(".")) continue;
      const path = `${root}/${entry.name}`;
      if (entry.name === active.deploymentHash) continue;
      folders.push({ path, modifiedMs: (await Deno.stat(path)).mtime?.getTime() ?? 0 });
    }
    folders.sort((a, b) => b.modifiedMs - a.modifiedMs);
    for (const folder of folders.slice(KEPT_OLD_MODULE_FOLDERS)) await Deno.remove(folder.path, { recursive: true });
    await forgetOldNodeFolders(nodeRoot(this.#dataDir), active.node?.nodeHash ?? null);
  }

  /**
   * Calls `listener` after every change that can change function results without a commit: a new deployment or
   * new environment variables (cached and subscribed query results must be recomputed). Returns the unsubscribe.
   */
  onChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  #notifyChange(): void {
    for (const listener of this.#changeListeners) {
      try {
        listener();
      } catch (error) {
        console.error("deployment change listener failed:", error);
      }
    }
  }

  #install(record: DeploymentRecord, deploymentDir: string, nodeDir: string | null): void {
    this.#record = record;
    const functions = indexFunctions(record.analysis);
    const app: ComponentDeployment = {
      path: "",
      modulesDir: deploymentDir,
      analysis: record.analysis,
      functions,
      env: {},
      children: new Map(record.children ?? []),
      httpMounts: new Map(record.httpMounts ?? []),
    };
    const components = new Map<ComponentPath, ComponentDeployment>([["", app]]);
    for (const component of record.components ?? []) {
      const parentPath = component.path.includes("/") ? component.path.slice(0, component.path.lastIndexOf("/")) : "";
      // Parents come first; the app's env is the deployment's.
      const parentEnv = parentPath === "" ? this.#environment : components.get(parentPath)?.env ?? {};
      components.set(component.path, {
        path: component.path,
        modulesDir: deploymentDir + "/" + componentModulesSubdir(component.path).slice(0, -1),
        analysis: component.analysis,
        functions: indexFunctions(component.analysis),
        env: boundEnvironment(component.env, parentEnv),
        children: new Map(component.children),
        httpMounts: new Map(component.httpMounts ?? []),
      });
    }
    this.#active = { dir: deploymentDir, nodeDir, analysis: record.analysis, functions, components };
  }

  async #loadModules(records: { path: string; environment: "isolate" | "node"; sha256: string }[]) {
    const modules: ModuleConfig[] = [];
    for (const record of records) {
      const json = await this.#database.getGlobal(MODULE_GLOBAL_PREFIX + record.sha256);
      if (!json) {
        throw new DeployError(
          "ModuleNotFound",
          `The server does not have module ${record.path} (hash ${record.sha256}); push all modules`,
        );
      }
      const module = JSON.parse(json) as ModuleConfig;
      modules.push({ ...module, path: record.path });
    }
    return modules;
  }
}

/**
 * Removes node folders beyond the newest few besides the active one (a node runner may still be finishing a call in a
 * just-replaced one). The package cache and runner folders (`npm-cache`, `tmp`, `runner-cache`) stay.
 */
async function forgetOldNodeFolders(root: string, activeHash: string | null): Promise<void> {
  const folders: { path: string; modifiedMs: number }[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      if (!entry.isDirectory || !/^[0-9a-f]{32}$/.test(entry.name) || entry.name === activeHash) continue;
      const path = `${root}/${entry.name}`;
      folders.push({ path, modifiedMs: (await Deno.stat(path)).mtime?.getTime() ?? 0 });
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  folders.sort((a, b) => b.modifiedMs - a.modifiedMs);
  for (const folder of folders.slice(KEPT_OLD_MODULE_FOLDERS)) await Deno.remove(folder.path, { recursive: true });
}

/** A child's env: literal values, and the parent's env vars it names (unset ones left out). */
function boundEnvironment(bindings: [string, EnvBinding][], parentEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, binding] of bindings) {
    const value = binding.type === "value" ? binding.value : parentEnv[binding.name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function moduleRecords(modules: ModuleConfig[]): Promise<ModuleRecord[]> {
  return Promise.all(modules.map(async (module) => ({
    path: module.path,
    environment: module.environment,
    sha256: await moduleSha256(module),
  })));
}

function checkEnvironmentName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !/^[a-zA-Z][a-zA-Z0-9_]*$/.test(name)) {
    throw new DeployError(
      "InvalidEnvironmentVariable",
      `Invalid environment variable name ${JSON.stringify(name)}: it must start with a letter and hold only ` +
        `letters, digits and underscores`,
    );
  }
  if (name.length > MAX_ENVIRONMENT_NAME_LENGTH) {
    throw new DeployError(
      "InvalidEnvironmentVariable",
      `Environment variable name ${name} is longer than ${MAX_ENVIRONMENT_NAME_LENGTH} characters`,
    );
  }
}
