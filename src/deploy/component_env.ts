/**
 * Checks the env each parent binds for its children (`app.use(c, { env: { MODE: "a", KEY: app.env.KEY } })`) against
 * what the child declares (`defineComponent(name, { env: { MODE: v.union(...) } })`), at push time: a binding of a
 * variable the child does not declare, a value its validator refuses, or a required variable left unset refuses the
 * push. Variables bound to a parent's env var are checked with the env the deployment has now; the store resolves them
 * again whenever the deployment's env changes.
 */
import {
  ComponentDefinitionError,
  type ComponentInstance,
  type DefinitionMetadata,
  type DefinitionPath,
} from "../components/mod.ts";
import { validateValue, type ValidatorJson } from "../values/mod.ts";

/** Throws ComponentDefinitionError for the first instance whose bound env does not fit its declaration. */
export function checkComponentEnv(
  root: ComponentInstance,
  definitions: ReadonlyMap<DefinitionPath, DefinitionMetadata>,
  deploymentEnv: Record<string, string>,
): void {
  const visit = (instance: ComponentInstance, env: Record<string, string>) => {
    for (const child of instance.children.values()) {
      const bound: Record<string, string> = {};
      for (const [name, binding] of child.env) {
        const value = binding.type === "value" ? binding.value : env[binding.name];
        if (value !== undefined) bound[name] = value;
      }
      checkInstance(child, definitions.get(child.definitionPath), bound);
      visit(child, bound);
    }
  };
  visit(root, deploymentEnv);
}

function checkInstance(
  instance: ComponentInstance,
  definition: DefinitionMetadata | undefined,
  bound: Record<string, string>,
): void {
  const declared = new Map(definition?.envVars ?? []);
  const refuse = (message: string) =>
    new ComponentDefinitionError("InvalidComponentEnv", `Component ${instance.path}: ${message}`);
  for (const [name] of instance.env) {
    if (!declared.has(name)) throw refuse(`env var ${name} is bound but the component does not declare it`);
  }
  for (const [name, declaration] of declared) {
    const value = bound[name];
    if (value === undefined) {
      if (declaration.optional) continue;
      throw refuse(`env var ${name} is required but its parent does not set it`);
    }
    let validator: ValidatorJson;
    try {
      validator = JSON.parse(declaration.value) as ValidatorJson;
    } catch {
      throw refuse(`env var ${name} has a malformed validator`);
    }
    const problem = validateValue(validator, value, () => false);
    if (problem !== null) throw refuse(`env var ${name} = ${JSON.stringify(value)}: ${problem}`);
  }
}
