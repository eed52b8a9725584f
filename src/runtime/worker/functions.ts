/**
 * Loading pushed modules and finding registered function objects in them (convex-compat.md §4.2).
 */
import type { UdfType } from "../types.ts";

/** The properties `convex/server`'s builders put on a registered function. */
export interface RegisteredFunction {
  isQuery?: boolean;
  isMutation?: boolean;
  isAction?: boolean;
  isHttp?: boolean;
  isPublic?: boolean;
  isInternal?: boolean;
  invokeQuery?(argsJson: string): Promise<string>;
  invokeMutation?(argsJson: string): Promise<string>;
  invokeAction?(requestId: string, argsJson: string): Promise<string>;
  exportArgs?(): string;
  exportReturns?(): string;
}

/** Function kinds as error messages name them. */
export type FunctionKind = "Query" | "Mutation" | "Action" | "HttpAction";

const SAFE_MODULE_PATH = /^(?:[A-Za-z0-9_.\-]+\/)*[A-Za-z0-9_.\-]+\.js$/;

/**
 * Namespaces of the modules loaded so far, by URL. `import()` of a module already loaded still costs a trip through
 * the module loader (~25 µs); every call starts with one. Bounded by the deployments a worker loads (runner.ts).
 */
const loaded = new Map<string, Record<string, unknown>>();
const MAX_LOADED_MODULES = 16_384;
/** Imports that ran a module's top-level code (or tried to), for retaking the global snapshot after them. */
let freshImports = 0;

/** How many imports have evaluated modules so far (it changes when a call loaded a module for the first time). */
export function freshImportCount(): number {
  return freshImports;
}

/** Imports a module of the deployment (cached after the first time). */
export function loadModule(deploymentUrl: string, modulePath: string): Promise<Record<string, unknown>> {
  const cached = loaded.get(deploymentUrl + modulePath);
  return cached === undefined ? importModule(deploymentUrl, modulePath) : Promise.resolve(cached);
}

async function importModule(deploymentUrl: string, modulePath: string): Promise<Record<string, unknown>> {
  if (!SAFE_MODULE_PATH.test(modulePath) || modulePath.split("/").some((part) => part === "..")) {
    throw new Error(`Invalid module path "${modulePath}"`);
  }
  freshImports++;
  try {
    const module = await import(new URL(modulePath, deploymentUrl).href);
    if (loaded.size >= MAX_LOADED_MODULES) loaded.clear();
    loaded.set(deploymentUrl + modulePath, module);
    return module;
  } catch (error) {
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new Error(`Failed to load module ${modulePath}: ${stripDeploymentUrl(detail, deploymentUrl)}`);
  }
}

/** The registered function `exportName` of `modulePath`, or an error naming what is missing. */
export async function loadFunction(
  deploymentUrl: string,
  modulePath: string,
  exportName: string,
): Promise<RegisteredFunction> {
  const module = await loadModule(deploymentUrl, modulePath);
  const value = Object.hasOwn(module, exportName) ? module[exportName] : undefined;
  if (typeof value !== "function" || functionKind(value as RegisteredFunction) === null) {
    const shown = exportName === "default" ? "default export" : `export "${exportName}"`;
    throw new Error(`Module ${modulePath} has no ${shown} that is a Convex function`);
  }
  return value as RegisteredFunction;
}

/** What kind of registered function `fn` is, or null if it is none. */
export function functionKind(fn: RegisteredFunction): FunctionKind | null {
  if (fn.isQuery === true) return "Query";
  if (fn.isMutation === true) return "Mutation";
  if (fn.isAction === true) return "Action";
  if (fn.isHttp === true) return "HttpAction";
  return null;
}

/** Throws unless `fn` can run as `udfType`. */
export function checkKind(fn: RegisteredFunction, udfType: UdfType | "snapshotQuery", path: string): void {
  const wanted: FunctionKind = udfType === "mutation" ? "Mutation" : udfType === "action" ? "Action" : "Query";
  const actual = functionKind(fn);
  if (actual !== wanted) {
    throw new Error(`Trying to execute ${path} as ${wanted}, but it is defined as ${actual}.`);
  }
}

/**
 * Resolves a function path (convex-compat.md §1.9): split on the last `:`, a missing name means `default`, `.js` is
 * appended to a module without an extension.
 */
export function resolveFunctionPath(path: string): { modulePath: string; exportName: string } {
  const colon = path.lastIndexOf(":");
  let module = colon === -1 ? path : path.slice(0, colon);
  const exportName = colon === -1 || colon === path.length - 1 ? "default" : path.slice(colon + 1);
  if (!/\.[A-Za-z0-9]+$/.test(module.split("/").pop() ?? "")) module += ".js";
  return { modulePath: module, exportName };
}

/** Replaces the deployment folder's URL in messages and stacks by nothing, leaving module paths. */
export function stripDeploymentUrl(text: string, deploymentUrl: string): string {
  return text.replaceAll(deploymentUrl, "");
}
