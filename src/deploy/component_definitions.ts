/**
 * The component definitions of a push: start_push's `appDefinition.definition` and `componentDefinitions[]`, parsed,
 * evaluated leaves first in a runner (each `convex.config.js` with its `_componentDeps/<base64url(path)>` imports
 * answered by synthetic modules standing for the already evaluated children), and turned into the instance tree.
 *
 * A definition's bundle may import nothing but those synthetic modules: the module writer refuses any other import,
 * and the runner's analysis gives it no syscalls, a frozen clock and a seeded random.
 */
import {
  buildComponentTree,
  ComponentDefinitionError,
  componentDepsDefinitionPath,
  componentDepsModuleSource,
  type ComponentInstance,
  definitionEvaluationOrder,
  type DefinitionMetadata,
  type DefinitionPath,
  parseDefinitionMetadata,
} from "../components/mod.ts";
import { AnalyzeError, type ModuleConfig, ModuleLoadError } from "../runtime/mod.ts";
import type { JsonValue } from "../values/mod.ts";

/** One entry of start_push's `componentDefinitions`, checked. */
export interface PushedComponentDefinition {
  definitionPath: DefinitionPath;
  definition: ModuleConfig;
  dependencies: DefinitionPath[];
  schema: ModuleConfig | null;
  functions: ModuleConfig[];
}

/** The evaluated definitions and the instance tree they make. */
export interface EvaluatedComponents {
  definitions: Map<DefinitionPath, DefinitionMetadata>;
  root: ComponentInstance;
}

/** Runs one definition's modules in a runner and returns its `export()` (DeploymentStore.evaluateDefinition). */
export type EvaluateDefinition = (modules: ModuleConfig[]) => Promise<JsonValue>;

// `"./_componentDeps/<b64>"` (esbuild emits the specifier relative to the definition, without an extension).
const COMPONENT_DEPS_IMPORT = /(["'])((?:\.\.?\/)+_componentDeps\/[A-Za-z0-9_=-]+)\1/g;

/** Evaluates every definition (app last) and builds the tree; throws ComponentDefinitionError for a bad tree. */
export async function evaluateComponents(
  appDefinition: ModuleConfig | null,
  appDependencies: DefinitionPath[],
  components: PushedComponentDefinition[],
  evaluate: EvaluateDefinition,
): Promise<EvaluatedComponents> {
  const byPath = new Map(components.map((component) => [component.definitionPath, component]));
  const order = definitionEvaluationOrder(appDependencies, components);
  const definitions = new Map<DefinitionPath, DefinitionMetadata>();
  for (const path of order) {
    const module = path === "" ? appDefinition : byPath.get(path)!.definition;
    if (module === null) {
      definitions.set("", {
        path: "",
        definitionType: { type: "app" },
        childComponents: [],
        httpMounts: {},
        exports: { type: "branch", branch: [] },
      });
      continue;
    }
    const allowed = new Set(path === "" ? appDependencies : byPath.get(path)!.dependencies);
    const modules = definitionModules(path, module, definitions, allowed);
    let value: JsonValue;
    try {
      value = await evaluate(modules);
    } catch (error) {
      if (!(error instanceof AnalyzeError || error instanceof ModuleLoadError)) throw error;
      throw new ComponentDefinitionError("InvalidDefinition", `${describe(path)} failed to evaluate: ${error.message}`);
    }
    definitions.set(path, parseDefinitionMetadata(value, path, path === ""));
  }
  return { definitions, root: buildComponentTree(definitions) };
}

/** The definition with each `_componentDeps` import rewritten to a written synthetic module. */
function definitionModules(
  path: DefinitionPath,
  module: ModuleConfig,
  evaluated: ReadonlyMap<DefinitionPath, DefinitionMetadata>,
  allowed: ReadonlySet<DefinitionPath>,
): ModuleConfig[] {
  const synthetic = new Map<DefinitionPath, ModuleConfig>();
  const source = module.source.replace(COMPONENT_DEPS_IMPORT, (_match, quote: string, specifier: string) => {
    const dependency = componentDepsDefinitionPath(specifier.slice(specifier.indexOf("_componentDeps/")));
    const metadata = dependency === null ? undefined : evaluated.get(dependency);
    if (dependency === null || metadata === undefined || !allowed.has(dependency)) {
      throw new ComponentDefinitionError(
        "InvalidDefinition",
        `${describe(path)} imports ${specifier}, which is not a component definition it depends on`,
      );
    }
    let written = synthetic.get(dependency);
    if (written === undefined) {
      written = {
        path: `_componentDeps/d${synthetic.size}.js`,
        source: componentDepsModuleSource(metadata),
        environment: "isolate",
      };
      synthetic.set(dependency, written);
    }
    return `${quote}./${written.path}${quote}`;
  });
  return [{ path: "convex.config.js", source, environment: "isolate" }, ...synthetic.values()];
}

function describe(path: DefinitionPath): string {
  return path === "" ? "The app definition (convex/convex.config)" : `Component definition ${JSON.stringify(path)}`;
}
