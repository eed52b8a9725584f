/**
 * HTTP mounts of a pushed tree: `app.use(component, { httpPrefix: "/foo" })` puts `{"/foo/":
 * "_reference/childComponent/<name>"}` in the parent's evaluated definition (convex/server 1.48 `buildHttpMounts`).
 * The push records them per instance as prefix → child name, so the site origin can route a request under the prefix
 * to that child's `http.js` (src/http/http_routing.ts).
 */
import {
  type ComponentInstance,
  componentInstances,
  type DefinitionMetadata,
  type DefinitionPath,
} from "../components/mod.ts";
import type { PreparedDeployment } from "./store.ts";

const CHILD_REFERENCE_PREFIX = "_reference/childComponent/";

/** The mounts of one instance's definition, as [prefix, child name] pairs; references to no child are dropped. */
export function httpMountsOf(
  instance: ComponentInstance,
  definitions: ReadonlyMap<DefinitionPath, DefinitionMetadata>,
): [string, string][] {
  const mounts = definitions.get(instance.definitionPath)?.httpMounts ?? {};
  const pairs: [string, string][] = [];
  for (const [prefix, reference] of Object.entries(mounts)) {
    if (!reference.startsWith(CHILD_REFERENCE_PREFIX)) continue;
    const name = reference.slice(CHILD_REFERENCE_PREFIX.length);
    if (instance.children.has(name)) pairs.push([prefix, name]);
  }
  return pairs;
}

/** Sets the mounts of the app and of every prepared instance from the evaluated tree. */
export function recordHttpMounts(
  prepared: PreparedDeployment,
  root: ComponentInstance,
  definitions: ReadonlyMap<DefinitionPath, DefinitionMetadata>,
): void {
  const instances = new Map(componentInstances(root).map((instance) => [instance.path, instance]));
  prepared.httpMounts = httpMountsOf(root, definitions);
  for (const component of prepared.components) {
    const instance = instances.get(component.path);
    if (instance !== undefined) component.httpMounts = httpMountsOf(instance, definitions);
  }
}
