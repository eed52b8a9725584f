/**
 * Which instance's `http.js` serves a site request, as Convex routes it: starting at the app, an exact route of the
 * current instance's `http.js` wins; otherwise the longest prefix among its `http.js` prefix routes and its HTTP
 * mounts (`use(c, { httpPrefix })`) wins, a mount taking ties. A mount hands the rest of the path (`/foo/bar` under
 * `/foo/` becomes `/bar`) to the child, where routing starts again. When nothing matches, the current instance's
 * `http.js`, if it has one, answers (its router's 404).
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import type { ActiveDeployment, ComponentDeployment } from "../functions/mod.ts";

/** Where a request goes: the instance and the path its router looks up. */
export interface HttpRoute {
  component: ComponentDeployment;
  /** The request path left after the mounts' prefixes (the whole path for the app). */
  routedPath: string;
}

/** Deepest chain of mounts followed; the component tree is bounded far below this. */
const MAX_MOUNT_DEPTH = 64;

/** The instance serving `path` with `method` (HEAD already routed as GET), or null when nobody does. */
export function routeHttpRequest(deployment: ActiveDeployment, path: string, method: string): HttpRoute | null {
  let component: ComponentDeployment = deployment.components.get("") ?? appOnly(deployment);
  let routedPath = path;
  for (let depth = 0; depth < MAX_MOUNT_DEPTH; depth++) {
    const routes = httpRoutesOf(component);
    const mounts = component.httpMounts ?? new Map<string, string>();
    if (routes === null && mounts.size === 0) return null;
    if (routes?.some((route) => route.method === method && route.path === routedPath)) {
      return { component, routedPath };
    }
    const ownPrefixLength = longestPrefixRoute(routes ?? [], routedPath, method);
    let mounted: { prefix: string; childName: string } | null = null;
    for (const [prefix, childName] of mounts) {
      if (!routedPath.startsWith(prefix) || prefix.length < ownPrefixLength) continue;
      if (mounted === null || prefix.length > mounted.prefix.length) mounted = { prefix, childName };
    }
    const child = mounted === null ? undefined : childOf(deployment, component, mounted.childName);
    if (mounted === null || child === undefined) return routes === null ? null : { component, routedPath };
    component = child;
    routedPath = "/" + routedPath.slice(mounted.prefix.length);
  }
  return null;
}

/** Whether `route` has a handler for `method` in its instance's analysed `http.js` routes. */
export function hasHandler(route: HttpRoute, method: string): boolean {
  const routes = httpRoutesOf(route.component) ?? [];
  return routes.some((candidate) =>
    candidate.method === method &&
    (candidate.path.endsWith("*")
      ? route.routedPath.startsWith(candidate.path.slice(0, -1))
      : candidate.path === route.routedPath)
  );
}

function httpRoutesOf(component: ComponentDeployment): { method: string; path: string }[] | null {
  return component.analysis.modules.find((module) => module.path === "http.js")?.httpRoutes ?? null;
}

/** Length of the longest `http.js` prefix route (`/foo/*`) matching `path`, 0 when none does. */
function longestPrefixRoute(routes: { method: string; path: string }[], path: string, method: string): number {
  let longest = 0;
  for (const route of routes) {
    if (route.method !== method || !route.path.endsWith("*")) continue;
    const prefix = route.path.slice(0, -1);
    if (path.startsWith(prefix)) longest = Math.max(longest, prefix.length);
  }
  return longest;
}

function childOf(
  deployment: ActiveDeployment,
  parent: ComponentDeployment,
  name: string,
): ComponentDeployment | undefined {
  const path = parent.children.get(name);
  return path === undefined ? undefined : deployment.components.get(path);
}

/** The app as an instance, for deployments that carry no instance map (tests building one by hand). */
function appOnly(deployment: ActiveDeployment): ComponentDeployment {
  return {
    path: "",
    modulesDir: deployment.dir,
    analysis: deployment.analysis,
    functions: deployment.functions,
    env: {},
    children: new Map(),
  };
}
