/**
 * Where an instance's modules live inside a deployment's folder. The app's stay at the folder's top (as before
 * components); an instance at path P gets `@components/<encodeURIComponent(P)>/`. `@` cannot start a pushed module's
 * path (runtime/module_writer.ts), so an instance folder never collides with an app module.
 */
import type { ComponentPath } from "./types.ts";

/** The folder below the deployment folder holding the modules of the instance at `path` (`""` for the app). */
export function componentModulesSubdir(path: ComponentPath): string {
  return path === "" ? "" : `@components/${encodeURIComponent(path)}/`;
}
