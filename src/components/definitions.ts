/**
 * The definitions of a push: the order to evaluate them in, and a check of what each `export()` returned.
 *
 * A definition module imports its children's definitions (`./_componentDeps/<base64url(path)>`), so they are evaluated
 * leaves first: the server answers each such import with the child's already evaluated metadata.
 */
import { ComponentDefinitionError } from "./errors.ts";
import type { ChildInstantiation, DefinitionMetadata, DefinitionPath, EnvBinding } from "./types.ts";

/** More definitions than this in one push is refused (the seven common components bring ten). */
export const MAX_COMPONENT_DEFINITIONS = 500;
/** The prefix of the module specifier a definition imports a child definition with. */
export const COMPONENT_DEPS_PREFIX = "_componentDeps/";

/** What the order needs of start_push's `componentDefinitions` entries. */
export interface DefinitionDependencies {
  definitionPath: DefinitionPath;
  dependencies: DefinitionPath[];
}

/**
 * Definition paths in evaluation order (every definition after the ones it depends on, the app `""` last), from the
 * app's `dependencies` and each component definition's. Refuses duplicates, unknown dependencies and cycles.
 */
export function definitionEvaluationOrder(
  appDependencies: readonly DefinitionPath[],
  componentDefinitions: readonly DefinitionDependencies[],
): DefinitionPath[] {
  if (componentDefinitions.length > MAX_COMPONENT_DEFINITIONS) {
    throw new ComponentDefinitionError(
      "TooManyComponentDefinitions",
      `A push may carry at most ${MAX_COMPONENT_DEFINITIONS} component definitions`,
    );
  }
  const dependenciesOf = new Map<DefinitionPath, readonly DefinitionPath[]>([["", appDependencies]]);
  for (const definition of componentDefinitions) {
    if (definition.definitionPath === "" || dependenciesOf.has(definition.definitionPath)) {
      throw new ComponentDefinitionError(
        "InvalidDefinition",
        `Component definition ${JSON.stringify(definition.definitionPath)} is pushed twice`,
      );
    }
    dependenciesOf.set(definition.definitionPath, definition.dependencies);
  }
  const order: DefinitionPath[] = [];
  const state = new Map<DefinitionPath, "visiting" | "done">();
  const visit = (path: DefinitionPath, from: DefinitionPath) => {
    if (state.get(path) === "done") return;
    if (state.get(path) === "visiting") {
      throw new ComponentDefinitionError("CyclicImport", `Found cyclic definition dependency at ${describe(path)}`);
    }
    const dependencies = dependenciesOf.get(path);
    if (dependencies === undefined) {
      throw new ComponentDefinitionError(
        "MissingComponentDefinition",
        `${describe(from)} uses the component definition ${JSON.stringify(path)}, which the push does not carry`,
      );
    }
    state.set(path, "visiting");
    for (const dependency of dependencies) visit(dependency, path);
    state.set(path, "done");
    order.push(path);
  };
  visit("", "");
  return order;
}

/** The definition path a `_componentDeps/<base64url>` import names, or null for any other specifier. */
export function componentDepsDefinitionPath(specifier: string): DefinitionPath | null {
  if (!specifier.startsWith(COMPONENT_DEPS_PREFIX)) return null;
  const encoded = specifier.slice(COMPONENT_DEPS_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(encoded)) return null;
  const base64 = encoded.replaceAll("-", "+").replaceAll("_", "/");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
}

/**
 * The source of the module that stands for an evaluated definition when another definition imports it. `defaultName`
 * matters: convex/server 1.48's `use()` names an instance `options.name ?? defaultName ?? <last path segment>`, and
 * the last segment of an npm component is `component`.
 */
export function componentDepsModuleSource(metadata: DefinitionMetadata): string {
  const defaultName = metadata.definitionType.type === "childComponent" ? metadata.definitionType.name : undefined;
  return `export default { export: () => (${JSON.stringify(metadata)}), componentDefinitionPath: ${
    JSON.stringify(metadata.path)
  }, defaultName: ${JSON.stringify(defaultName ?? null)} };`;
}

/** Checks what a definition's `export()` returned and adds its `path`; `isApp` for `convex.config.js` of the app. */
export function parseDefinitionMetadata(value: unknown, path: DefinitionPath, isApp: boolean): DefinitionMetadata {
  const where = describe(path);
  const bad = (what: string) => new ComponentDefinitionError("InvalidDefinition", `${where}: ${what}`);
  if (!isRecord(value)) throw bad("export() did not return an object");
  const type = value.definitionType;
  if (!isRecord(type) || (type.type !== "app" && type.type !== "childComponent")) {
    throw bad('definitionType must be {type: "app"} or {type: "childComponent", name}');
  }
  if (isApp !== (type.type === "app")) {
    throw bad(isApp ? "the app's convex.config must use defineApp()" : "a component must use defineComponent()");
  }
  if (type.type === "childComponent" && (typeof type.name !== "string" || !isIdentifier(type.name))) {
    throw bad(`invalid component name ${JSON.stringify(type.name)}`);
  }
  if (!Array.isArray(value.childComponents)) throw bad("childComponents must be an array");
  const childComponents = value.childComponents.map((child) => parseChild(child, bad));
  if (!isRecord(value.httpMounts) || !Object.values(value.httpMounts).every((v) => typeof v === "string")) {
    throw bad("httpMounts must map prefixes to references");
  }
  if (!isRecord(value.exports) || value.exports.type !== "branch" || !Array.isArray(value.exports.branch)) {
    throw bad("exports must be a branch");
  }
  if (value.envVars !== undefined && value.envVars !== null && !Array.isArray(value.envVars)) {
    throw bad("envVars must be an array");
  }
  return { ...(value as unknown as DefinitionMetadata), childComponents, path };
}

function parseChild(child: unknown, bad: (what: string) => Error): ChildInstantiation {
  if (!isRecord(child) || typeof child.name !== "string" || typeof child.path !== "string") {
    throw bad("each child component needs a name and a definition path");
  }
  const env = child.env ?? null;
  if (env !== null && !(Array.isArray(env) && env.every(isEnvEntry))) {
    throw bad(`child ${JSON.stringify(child.name)}: env must be [name, {type: "value" | "envVar"}] pairs`);
  }
  return { name: child.name, path: child.path, args: Array.isArray(child.args) ? child.args : [], env };
}

function isEnvEntry(entry: unknown): entry is [string, EnvBinding] {
  if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string" || !isRecord(entry[1])) return false;
  const binding = entry[1];
  return (binding.type === "value" && typeof binding.value === "string") ||
    (binding.type === "envVar" && typeof binding.name === "string");
}

/** A component name: a Convex identifier (convex-compat.md §1.3). */
export function isIdentifier(name: string): boolean {
  return name.length <= 64 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !/^_+$/.test(name);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(path: DefinitionPath): string {
  return path === "" ? "The app definition (convex/convex.config)" : `Component definition ${JSON.stringify(path)}`;
}
