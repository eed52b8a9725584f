/**
 * What the executor needs to run a function of a component instance: the instance's functions, the `process.env` of
 * every instance a call may reach, and a table's namespace. Calls across instances resolve through the runtime's
 * `resolveCallAddress` (re-exported by functions/mod.ts), which the worker uses for nested calls too.
 */
import type { ActiveDeployment, FunctionInfo } from "./deployment.ts";

/** Env vars every instance sees besides those its parent binds: where the deployment is reached. */
const SYSTEM_ENV_VARS = ["CONVEX_CLOUD_URL", "CONVEX_SITE_URL"];

/** The functions of the instance at `componentPath` (the app's for `""`), or undefined when there is no such one. */
export function componentFunctions(
  deployment: ActiveDeployment | null,
  componentPath: string,
): Map<string, FunctionInfo> | undefined {
  if (deployment === null) return undefined;
  if (componentPath === "") return deployment.functions;
  return deployment.components?.get(componentPath)?.functions;
}

/**
 * The envs of one call: its own component's, and the others a nested call or handle may reach. `others` lists only
 * instances with variables of their own (and the app, when the call is a component's): the runtime gives an instance
 * missing there the deployment's URLs alone, so a call carries no env it does not need.
 */
export interface CallEnvironments {
  env: Record<string, string>;
  others?: Record<string, Record<string, string>>;
}

/**
 * `process.env` of the functions of `componentPath`, and of the other instances a nested call or a handle may reach
 * from there (a component calling back into the app through a handle runs app code, with the app's env). The app gets
 * the deployment's env (`appEnv`); a component only what its parent bound, plus the deployment's URLs.
 */
export function componentEnvironments(
  deployment: ActiveDeployment,
  componentPath: string,
  appEnv: Record<string, string>,
): CallEnvironments {
  const components = deployment.components;
  const envOf = (path: string): Record<string, string> => {
    if (path === "") return appEnv;
    const env: Record<string, string> = { ...components?.get(path)?.env };
    for (const name of SYSTEM_ENV_VARS) if (appEnv[name] !== undefined) env[name] = appEnv[name];
    return env;
  };
  const env = envOf(componentPath);
  if (components === undefined || components.size <= 1) return { env };
  const others: Record<string, Record<string, string>> = {};
  for (const [path, component] of components) {
    if (path !== componentPath && path !== "" && Object.keys(component.env).length > 0) others[path] = envOf(path);
  }
  if (componentPath !== "") others[""] = appEnv;
  return Object.keys(others).length === 0 ? { env } : { env, others };
}

/** The namespace of `table` (absent: the app). */
export function tableComponentPath(table: { componentPath?: string }): string {
  return table.componentPath ?? "";
}
