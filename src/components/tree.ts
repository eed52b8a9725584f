/**
 * The component instance tree: every `use()` of every evaluated definition, from the app down, each instance named by
 * its path (`aggregate`, `emailWorkpool/batchWorker`). One definition may be instantiated many times (three
 * batch-worker instances in the components test app); data and functions belong to instances, not definitions.
 */
import { ComponentDefinitionError } from "./errors.ts";
import { isIdentifier } from "./definitions.ts";
import type { ComponentInstance, ComponentPath, DefinitionMetadata, DefinitionPath } from "./types.ts";

/** Deepest allowed nesting below the app (the app's children are at depth 1). */
export const MAX_COMPONENT_DEPTH = 10;
/** Most instances in one tree (each brings its own tables, scheduler and crons). */
export const MAX_COMPONENT_INSTANCES = 1_000;

/** Builds the tree from the evaluated definitions (keyed by definition path, the app at `""`). */
export function buildComponentTree(definitions: ReadonlyMap<DefinitionPath, DefinitionMetadata>): ComponentInstance {
  const app = definitions.get("");
  if (app === undefined) throw new ComponentDefinitionError("InvalidDefinition", "The push has no app definition");
  let count = 0;
  const instantiate = (
    definition: DefinitionMetadata,
    path: ComponentPath,
    name: string,
    env: ComponentInstance["env"],
  ): ComponentInstance => {
    if (++count > MAX_COMPONENT_INSTANCES) {
      throw new ComponentDefinitionError(
        "TooManyComponents",
        `The app installs more than ${MAX_COMPONENT_INSTANCES} component instances`,
      );
    }
    const depth = path === "" ? 0 : path.split("/").length;
    const children = new Map<string, ComponentInstance>();
    for (const child of definition.childComponents) {
      const where = path === "" ? "the app" : `component ${path}`;
      if (!isIdentifier(child.name)) {
        throw new ComponentDefinitionError(
          "InvalidComponentName",
          `Invalid component name ${JSON.stringify(child.name)} in ${where}: use letters, digits and _ (at most 64)`,
        );
      }
      if (children.has(child.name)) {
        throw new ComponentDefinitionError(
          "DuplicateComponentName",
          `Two components in ${where} are named ${JSON.stringify(child.name)}: pass a distinct { name } to use()`,
        );
      }
      const childDefinition = definitions.get(child.path);
      if (childDefinition === undefined || child.path === "") {
        throw new ComponentDefinitionError(
          "MissingComponentDefinition",
          `${where} uses ${JSON.stringify(child.name)} from ${
            JSON.stringify(child.path)
          }, which the push does not carry`,
        );
      }
      if (depth + 1 > MAX_COMPONENT_DEPTH) {
        throw new ComponentDefinitionError(
          "ComponentTreeTooDeep",
          `Components nest at most ${MAX_COMPONENT_DEPTH} deep (at ${path}/${child.name})`,
        );
      }
      const childPath = path === "" ? child.name : `${path}/${child.name}`;
      children.set(child.name, instantiate(childDefinition, childPath, child.name, child.env ?? []));
    }
    return { path, name, definitionPath: definition.path, env, children };
  };
  return instantiate(app, "", "", []);
}

/** Every instance, parents before children, in `use` order. */
export function componentInstances(root: ComponentInstance): ComponentInstance[] {
  const all: ComponentInstance[] = [];
  const walk = (instance: ComponentInstance) => {
    all.push(instance);
    for (const child of instance.children.values()) walk(child);
  };
  walk(root);
  return all;
}

/** The instance at `path`, or null. */
export function findComponent(root: ComponentInstance, path: ComponentPath): ComponentInstance | null {
  if (path === "") return root;
  let instance: ComponentInstance | undefined = root;
  for (const name of path.split("/")) {
    instance = instance.children.get(name);
    if (instance === undefined) return null;
  }
  return instance;
}

/** start_push's `app`: the checked tree the CLI reads back (convex `lib/deployApi/checkedComponent.js`). */
export interface CheckedComponent {
  definitionPath: DefinitionPath;
  componentPath: ComponentPath;
  args: Record<string, never>;
  childComponents: Record<string, CheckedComponent>;
  httpRoutes: { httpModuleRoutes: { method: string; path: string }[] | null; mounts: string[] };
  exports: Record<string, never>;
}

/** The tree in start_push's `app` shape; `routesOf` gives an instance's analysed `http.js` routes (null: none). */
export function checkedComponentTree(
  root: ComponentInstance,
  definitions: ReadonlyMap<DefinitionPath, DefinitionMetadata>,
  routesOf: (instance: ComponentInstance) => { method: string; path: string }[] | null = () => null,
): CheckedComponent {
  const childComponents: Record<string, CheckedComponent> = {};
  for (const [name, child] of root.children) childComponents[name] = checkedComponentTree(child, definitions, routesOf);
  const mounts = Object.keys(definitions.get(root.definitionPath)?.httpMounts ?? {});
  return {
    definitionPath: root.definitionPath,
    componentPath: root.path,
    args: {},
    childComponents,
    httpRoutes: { httpModuleRoutes: routesOf(root), mounts },
    exports: {},
  };
}
