/**
 * Convex components, the pure part: the order to evaluate a push's definitions in, checks of what they evaluate to,
 * the instance tree with its paths, and function addresses across instances (child references, function handles).
 * Nothing here touches the database or the runtime yet; push, namespaces and calls build on it (issue 11).
 */
export { ComponentDefinitionError } from "./errors.ts";
export { componentModulesSubdir } from "./layout.ts";
export {
  COMPONENT_DEPS_PREFIX,
  componentDepsDefinitionPath,
  componentDepsModuleSource,
  type DefinitionDependencies,
  definitionEvaluationOrder,
  isIdentifier,
  MAX_COMPONENT_DEFINITIONS,
  parseDefinitionMetadata,
} from "./definitions.ts";
export {
  buildComponentTree,
  type CheckedComponent,
  checkedComponentTree,
  componentInstances,
  findComponent,
  MAX_COMPONENT_DEPTH,
  MAX_COMPONENT_INSTANCES,
} from "./tree.ts";
export {
  type ChildFunctionReference,
  type FunctionAddress,
  functionHandle,
  parseChildReference,
  parseFunctionHandle,
} from "./references.ts";
export type {
  ChildInstantiation,
  ComponentInstance,
  ComponentPath,
  DefinitionMetadata,
  DefinitionPath,
  EnvBinding,
  EnvVarDeclaration,
} from "./types.ts";
