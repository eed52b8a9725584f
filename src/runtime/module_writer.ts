/**
 * Writes a deployment's pushed modules to `<dataDir>/modules/<deployment hash>/`, where runner workers `import()`
 * them as files (relative imports between `x.js` and `_deps/Y.js` then resolve by themselves).
 *
 * The folder is content-addressed and written once, through a temporary folder renamed into place, so a runner never
 * sees a half-written deployment and two pushes of the same code share one folder.
 */
import { posix } from "node:path";
import { componentModulesSubdir } from "../components/mod.ts";
import { ModuleLoadError } from "./errors.ts";
import type { ModuleConfig } from "./types.ts";

/** Most modules in one deployment. */
export const MAX_MODULES = 10_000;
/** Largest module source. */
export const MAX_MODULE_SOURCE_BYTES = 32 * 1024 * 1024;

const PATH_COMPONENT = /^[A-Za-z0-9_.\-]{1,64}$/;

/** Where a deployment's modules were written. */
export interface WrittenDeployment {
  /** Hex SHA-256 over every module's path, environment, source and source map. */
  deploymentHash: string;
  /** Absolute folder holding the modules; pass it as `deploymentDir` to the pool. */
  deploymentDir: string;
}

/** The folder under which all deployments of `dataDir` live (the only folder runner workers may read). */
export function modulesRoot(dataDir: string): string {
  return posix.join(posix.resolve(dataDir), "modules");
}

/**
 * Validates the modules (paths, import specifiers) and writes them. Throws `ModuleLoadError` naming the module and
 * the offending specifier for anything that could escape the sandbox or would not load.
 */
export async function writeDeploymentModules(
  dataDir: string,
  modules: ModuleConfig[],
  components: ReadonlyMap<string, ModuleConfig[]> = new Map(),
): Promise<WrittenDeployment> {
  await validateModules(modules);
  // Each instance's modules are a tree of their own: validated alone, so no import reaches another instance's.
  for (const componentModules of components.values()) await validateModules(componentModules);
  const files = filesToWrite(modules, components);
  const deploymentHash = await hashModules(files);
  const root = modulesRoot(dataDir);
  const deploymentDir = posix.join(root, deploymentHash);
  if (await exists(deploymentDir)) return { deploymentHash, deploymentDir };

  await Deno.mkdir(root, { recursive: true });
  const tempDir = await Deno.makeTempDir({ dir: root, prefix: `.${deploymentHash}.tmp-` });
  try {
    for (const module of files) {
      const file = posix.join(tempDir, module.path);
      await Deno.mkdir(posix.dirname(file), { recursive: true });
      await Deno.writeTextFile(file, module.source);
      if (module.sourceMap !== undefined) await Deno.writeTextFile(file + ".map", module.sourceMap);
    }
    await Deno.rename(tempDir, deploymentDir);
  } catch (error) {
    await Deno.remove(tempDir, { recursive: true }).catch(() => {});
    // Another writer may have won the race with identical content.
    if (await exists(deploymentDir)) return { deploymentHash, deploymentDir };
    throw error;
  }
  return { deploymentHash, deploymentDir };
}

/**
 * Every file of the deployment, paths relative to its folder: the app's as they are, an instance's under
 * `@components/<encodeURIComponent(path)>/` (components/layout.ts), one flat folder per instance: `@` and `%` never
 * occur in a module path, so no instance's folder meets another's or an app module.
 */
function filesToWrite(modules: ModuleConfig[], components: ReadonlyMap<string, ModuleConfig[]>): ModuleConfig[] {
  const files = [...modules];
  for (const [componentPath, componentModules] of components) {
    if (componentPath === "") throw new ModuleLoadError("", "The app's modules are not a component's");
    const folder = componentModulesSubdir(componentPath);
    for (const module of componentModules) files.push({ ...module, path: folder + module.path });
  }
  return files;
}

/**
 * Rejects with `ModuleLoadError` for the first module with a bad path or a forbidden import.
 *
 * The import scanner is loaded here, on the first push: it compiles a WebAssembly lexer as it loads (a runner's
 * memory at start-up was ~2.7 MiB larger with it), and every process loads this folder's face, runners included,
 * which never scan (issue 14, footprint).
 */
export async function validateModules(modules: ModuleConfig[]): Promise<void> {
  const { checkSpecifier, scanSpecifiers } = await import("./specifiers.ts");
  if (modules.length > MAX_MODULES) {
    throw new ModuleLoadError("", `A deployment may have at most ${MAX_MODULES} modules (got ${modules.length})`);
  }
  const paths = new Set<string>();
  for (const module of modules) {
    checkModulePath(module.path);
    if (paths.has(module.path)) throw new ModuleLoadError(module.path, `Module ${module.path} is pushed twice`);
    paths.add(module.path);
  }
  for (const module of modules) {
    if (module.environment !== "isolate") {
      throw new ModuleLoadError(
        module.path,
        `Module ${module.path} uses the "use node" runtime, which is not supported by denvex yet`,
      );
    }
    if (module.source.length > MAX_MODULE_SOURCE_BYTES) {
      throw new ModuleLoadError(module.path, `Module ${module.path} is larger than ${MAX_MODULE_SOURCE_BYTES} bytes`);
    }
    for (const { specifier, line } of scanSpecifiers(module.source, module.path)) {
      const problem = checkSpecifier(module.path, specifier, paths);
      if (problem !== null) throw new ModuleLoadError(module.path, `Module ${module.path} (line ${line}) ${problem}`);
    }
  }
}

/** Throws `ModuleLoadError` unless `path` is a relative POSIX path of `.js` file inside the tree. */
export function checkModulePath(path: string): void {
  const components = path.split("/");
  const ok = path.endsWith(".js") &&
    components.every((component) => PATH_COMPONENT.test(component) && component !== "." && component !== "..");
  if (!ok) throw new ModuleLoadError(path, `Invalid module path "${path}"`);
}

async function hashModules(modules: ModuleConfig[]): Promise<string> {
  const sorted = [...modules].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // Lengths make the concatenation unambiguous.
  const parts = sorted.flatMap((m) => [m.path, m.environment, m.source, m.sourceMap ?? ""]);
  const text = parts.map((part) => `${part.length}:${part}`).join("");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(digest).toHex();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
