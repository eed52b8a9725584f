/**
 * The parts of a start_push body, checked: modules, unchanged module hashes, component definitions and their
 * dependencies. Anything malformed is the pushed request's fault: a DeployError (400).
 */
import type { ComponentPath, DefinitionPath } from "../components/mod.ts";
import type { ModuleConfig, NodeDependency } from "../runtime/mod.ts";
import type { PushedComponentDefinition } from "./component_definitions.ts";
import { DeployError } from "./store.ts";

/** Most modules of one push, per instance (the runtime's module writer has its own limit too). */
const MAX_PUSH_MODULES = 10_000;

export function checkModuleSet(modules: ModuleConfig[], componentPath: ComponentPath = ""): void {
  const where = componentPath === "" ? "" : ` of component ${componentPath}`;
  if (modules.length > MAX_PUSH_MODULES) {
    throw new DeployError("InvalidModules", `A push may hold at most ${MAX_PUSH_MODULES} modules${where}`);
  }
  const paths = new Set<string>();
  for (const module of modules) {
    if (paths.has(module.path)) {
      throw new DeployError("InvalidModules", `Module ${module.path}${where} was pushed twice`);
    }
    paths.add(module.path);
  }
}

export function parseDependencies(value: unknown, what: string): DefinitionPath[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === "string")) {
    throw new DeployError("InvalidPush", `${what}.dependencies must be a list of definition paths`);
  }
  return value;
}

export function parseComponentDefinitions(value: unknown): PushedComponentDefinition[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new DeployError("InvalidPush", "componentDefinitions must be a list");
  return value.map((entry, i) => {
    const definition = (entry ?? {}) as Record<string, unknown>;
    if (typeof definition.definitionPath !== "string" || definition.definitionPath === "") {
      throw new DeployError("InvalidPush", `componentDefinitions[${i}] needs a definitionPath`);
    }
    const what = `component definition ${definition.definitionPath}`;
    return {
      definitionPath: definition.definitionPath,
      definition: parseModule(definition.definition, what),
      dependencies: parseDependencies(definition.dependencies, what),
      schema: definition.schema ? parseModule(definition.schema, what) : null,
      functions: parseModules(definition.functions, what),
    };
  });
}

export function parseModule(value: unknown, what: string): ModuleConfig {
  const module = value as Record<string, unknown> | null;
  if (
    !module || typeof module !== "object" || typeof module.path !== "string" || typeof module.source !== "string" ||
    (module.sourceMap !== undefined && module.sourceMap !== null && typeof module.sourceMap !== "string")
  ) {
    throw new DeployError("InvalidModules", `${what}: a module needs a string path and source`);
  }
  const environment = module.environment ?? "isolate";
  if (environment !== "isolate" && environment !== "node") {
    throw new DeployError("InvalidModules", `${what}: module ${module.path} has unknown environment ${environment}`);
  }
  return {
    path: module.path,
    source: module.source,
    sourceMap: typeof module.sourceMap === "string" ? module.sourceMap : undefined,
    environment,
  };
}

export function parseModules(value: unknown, what: string): ModuleConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new DeployError("InvalidModules", `${what} must be a list`);
  return value.map((module) => parseModule(module, what));
}

export function parseUnchanged(value: unknown): { path: string; environment: "isolate" | "node"; sha256: string }[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new DeployError("InvalidModules", "unchangedModuleHashes must be a list");
  return value.map((entry) => {
    const { path, environment, sha256 } = (entry ?? {}) as Record<string, unknown>;
    if (
      typeof path !== "string" || typeof sha256 !== "string" || (environment !== "isolate" && environment !== "node")
    ) {
      throw new DeployError("InvalidModules", "unchangedModuleHashes entries need path, environment and sha256");
    }
    return { path, environment, sha256 };
  });
}

/** The push's `nodeDependencies` (`[{name, version}]`, `convex.json` `node.externalPackages`); absent means none. */
export function parseNodeDependencies(value: unknown): NodeDependency[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new DeployError("InvalidPush", "nodeDependencies must be a list");
  return value.map((entry, i) => {
    const { name, version } = (entry ?? {}) as { name?: unknown; version?: unknown };
    if (typeof name !== "string" || typeof version !== "string") {
      throw new DeployError("InvalidPush", `nodeDependencies[${i}] needs a name and a version`);
    }
    return { name, version };
  });
}
