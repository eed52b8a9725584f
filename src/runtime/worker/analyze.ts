/**
 * Analysis of a pushed deployment: the functions each module exports and the special default exports of `http.js`,
 * `crons.js`, `schema.js` and `auth.config.js` (convex-compat.md §4.2).
 */
import type { JsonValue } from "../../values/mod.ts";
import type { AnalyzedFunction, DeploymentAnalysis, HttpRoute, ModuleAnalysis } from "../types.ts";
import { functionKind, loadModule, type RegisteredFunction } from "./functions.ts";

/** Imports every module and describes it. Throws an Error naming the module at the first failure. */
export async function analyzeDeployment(deploymentUrl: string, modulePaths: string[]): Promise<DeploymentAnalysis> {
  const analysis: DeploymentAnalysis = { modules: [], schemaJson: null, authConfig: null };
  // The auth config first: its top-level `process.env` reads are recorded only while it is first evaluated, which
  // must not happen earlier as another module's import.
  const ordered = [...modulePaths].sort((a, b) => Number(b === "auth.config.js") - Number(a === "auth.config.js"));
  for (const path of ordered) {
    if (path === "convex.config.js") {
      // A component definition (defineApp / defineComponent), evaluated leaves first by the push (deploy/).
      analysis.componentDefinition = await evaluateDefinition(deploymentUrl);
      continue;
    }
    let module: Record<string, unknown>;
    try {
      if (path === "auth.config.js") {
        const loaded = await loadRecordingEnv(() => loadModule(deploymentUrl, path));
        module = loaded.value;
        analysis.authConfigMissingEnv = loaded.missingEnv;
      } else {
        module = await loadModule(deploymentUrl, path);
      }
    } catch (error) {
      // loadModule's message already names the module.
      throw error instanceof Error ? error : new Error(`Failed to load module ${path}: ${String(error)}`);
    }
    try {
      const defaultExport = module.default as Record<string, unknown> | undefined;
      if (path === "schema.js") {
        analysis.schemaJson = callExport(defaultExport, "export", "a schema (defineSchema)");
        continue;
      }
      if (path === "auth.config.js") {
        analysis.authConfig = plainJson(defaultExport);
        continue;
      }
      analysis.modules.push(analyzeModule(path, module));
    } catch (error) {
      throw new Error(`Failed to analyze ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return analysis;
}

function analyzeModule(path: string, module: Record<string, unknown>): ModuleAnalysis {
  const functions: AnalyzedFunction[] = [];
  for (const [name, value] of Object.entries(module)) {
    if (typeof value !== "function") continue;
    const fn = value as RegisteredFunction;
    const kind = functionKind(fn);
    if (kind === null) continue;
    // An `httpAction` exported from an ordinary module is not a function of the deployment (Convex lists only
    // queries, mutations and actions; HTTP actions are reached through `http.js` routes alone).
    if (kind === "HttpAction") continue;
    const visibility = fn.isInternal === true ? { kind: "internal" as const } : { kind: "public" as const };
    let args: string;
    let returns: string;
    try {
      args = fn.exportArgs?.() ?? '{"type":"any"}';
      returns = fn.exportReturns?.() ?? "null";
    } catch (error) {
      throw new Error(`function ${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
    functions.push({ name, udfType: kind, visibility, args, returns });
  }
  const defaultExport = module.default as Record<string, unknown> | undefined;
  const httpRoutes = path === "http.js" ? routesOf(defaultExport) : null;
  const cronsJson = path === "crons.js" ? callExport(defaultExport, "export", "a cron table (cronJobs)") : null;
  return { path, functions, httpRoutes, cronsJson };
}

/**
 * Runs `load` with `process.env` recording the variables read that are not set: what the module's evaluation
 * actually read, so a comment or an unused string naming `process.env.X` demands nothing.
 */
async function loadRecordingEnv<T>(load: () => Promise<T>): Promise<{ value: T; missingEnv: string[] }> {
  const holder = globalThis as { process?: { env: Record<string, string | undefined> } | undefined };
  const saved = holder.process;
  const env = saved?.env ?? {};
  const missing = new Set<string>();
  const recording = new Proxy(env, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if (typeof key === "string" && value === undefined) missing.add(key);
      return value;
    },
  });
  holder.process = { ...saved, env: recording };
  try {
    const value = await load();
    return { value, missingEnv: [...missing].sort() };
  } finally {
    holder.process = saved;
  }
}

function routesOf(router: Record<string, unknown> | undefined): HttpRoute[] {
  if (router?.isRouter !== true || typeof router.getRoutes !== "function") {
    throw new Error("the default export is not an HttpRouter (httpRouter())");
  }
  const routes = (router.getRoutes as () => unknown[][])();
  return routes.map(([path, method]) => ({ path: String(path), method: String(method) }));
}

function callExport(value: Record<string, unknown> | undefined, method: string, what: string): string {
  if (typeof value?.[method] !== "function") throw new Error(`the default export is not ${what}`);
  const result = (value[method] as () => unknown).call(value);
  if (typeof result !== "string") throw new Error(`${method}() of the default export did not return a string`);
  return result;
}

/**
 * Imports `convex.config.js` and returns what its default export's `export()` gives. A definition is pure data: the
 * clock and randomness throw while it loads and exports (the official backend refuses them too), and an analysis has
 * no transaction, so syscalls fail.
 */
async function evaluateDefinition(deploymentUrl: string): Promise<JsonValue> {
  const saved = { now: Date.now, random: Math.random };
  const refuse = (what: string) => () => {
    throw new Error(`${what} is not allowed while evaluating a component definition (convex.config)`);
  };
  Date.now = refuse("Date.now()");
  Math.random = refuse("Math.random()");
  try {
    const module = await loadModule(deploymentUrl, "convex.config.js");
    const exported = Object.keys(module);
    if (exported.length !== 1 || exported[0] !== "default") {
      throw new Error(`convex.config.js must have exactly one export, the default (found: ${exported.join(", ")})`);
    }
    const definition = module.default as Record<string, unknown> | undefined;
    if (typeof definition?.export !== "function") {
      throw new Error("the default export of convex.config.js is not a component definition");
    }
    return plainJson((definition.export as () => unknown).call(definition));
  } catch (error) {
    throw new Error(`Failed to evaluate convex.config.js: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    Date.now = saved.now;
    Math.random = saved.random;
  }
}

function plainJson(value: unknown): JsonValue {
  if (typeof value !== "object" || value === null) throw new Error("the default export is not an object");
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}
