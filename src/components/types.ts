/**
 * Shapes of the component model: what a definition's `export()` evaluates to (convex/server 1.48
 * `exportAppForAnalysis` / `exportComponentForAnalysis`, plus the `path` the server adds), and the instance tree built
 * from it. Field names are the wire names the CLI reads back in start_push's `analysis`.
 */

/** A component's folder relative to `convex/` as the CLI sends it; `""` is the app. Not stable across checkouts. */
export type DefinitionPath = string;
/** Where an instance sits in the tree: `""` the app, `aggregate`, `emailWorkpool/batchWorker`. Stable: data hangs on it. */
export type ComponentPath = string;

/** How a parent binds one env var of a child: a literal value, or one of the parent's own env vars. */
export type EnvBinding = { type: "value"; value: string } | { type: "envVar"; name: string };

/** One `use(definition, { name, env })` of a definition. */
export interface ChildInstantiation {
  name: string;
  path: DefinitionPath;
  args: unknown[];
  env: [string, EnvBinding][] | null;
}

/** An env var a component declares (`defineComponent(name, { env })`), its validator as JSON text. */
export interface EnvVarDeclaration {
  type: "value";
  value: string;
  optional?: boolean;
}

/** A definition's evaluated metadata, as start_push's `analysis[path].definition` carries it. */
export interface DefinitionMetadata {
  path: DefinitionPath;
  /** The component's own name from `defineComponent(name)`; absent for the app. */
  name?: string;
  definitionType: { type: "app"; httpPrefix?: string } | { type: "childComponent"; name: string; args: unknown[] };
  httpPrefix?: string;
  childComponents: ChildInstantiation[];
  /** Normalized prefix (`/foo/`) → `_reference/childComponent/<name>`. */
  httpMounts: Record<string, string>;
  exports: { type: "branch"; branch: unknown[] };
  envVars?: [string, EnvVarDeclaration][];
}

/** One instance in the tree. */
export interface ComponentInstance {
  path: ComponentPath;
  /** The name its parent gave it; `""` for the app. */
  name: string;
  definitionPath: DefinitionPath;
  env: [string, EnvBinding][];
  /** By name, in `use` order. */
  children: Map<string, ComponentInstance>;
}
