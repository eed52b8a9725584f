/**
 * Push-time checks of what analysis found in `crons.js` and `http.js`, and the analysis in the shape start_push
 * reports to the CLI (convex-compat.md §5.4).
 *
 * Private to `src/deploy`: other folders use its `mod.ts`.
 */
import { type FunctionInfo, parseFunctionPath } from "../functions/mod.ts";
import type { DeploymentAnalysis, HttpRoute } from "../runtime/mod.ts";
import { DeployError } from "./store.ts";

/** Most cron jobs of one deployment. */
const MAX_CRON_JOBS = 1_000;
/** Most HTTP routes of one router. */
const MAX_HTTP_ROUTES = 10_000;
const HTTP_METHODS = new Set(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);

/** One cron job of `crons.js`. */
export interface CronSpec {
  name: string;
  args: unknown;
  schedule: unknown;
}

/** The cron jobs, keyed by identifier; each must name an existing mutation or action. */
export function checkCrons(
  analysis: DeploymentAnalysis,
  functions: Map<string, FunctionInfo>,
): Record<string, CronSpec> {
  const module = analysis.modules.find((candidate) => candidate.path === "crons.js");
  if (!module?.cronsJson) return {};
  const crons = JSON.parse(module.cronsJson) as Record<string, CronSpec>;
  const entries = Object.entries(crons);
  if (entries.length > MAX_CRON_JOBS) {
    throw new DeployError("InvalidCronJobs", `crons.ts defines ${entries.length} jobs; at most ${MAX_CRON_JOBS}`);
  }
  for (const [identifier, spec] of entries) {
    let key: string;
    try {
      key = parseFunctionPath(spec.name).key;
    } catch (error) {
      throw new DeployError("InvalidCronJobs", `Cron job "${identifier}": ${(error as Error).message}`);
    }
    const info = functions.get(key);
    if (!info) {
      throw new DeployError(
        "InvalidCronJobs",
        `Cron job "${identifier}" calls ${spec.name}, which is not a function of this deployment`,
      );
    }
    if (info.udfType === "query") {
      throw new DeployError(
        "InvalidCronJobs",
        `Cron job "${identifier}" calls ${spec.name}, a query; cron jobs run mutations and actions`,
      );
    }
  }
  return crons;
}

/** The routes of `http.js` (null without one), checked for methods and reserved paths. */
export function checkHttpRoutes(analysis: DeploymentAnalysis): HttpRoute[] | null {
  const module = analysis.modules.find((candidate) => candidate.path === "http.js");
  if (!module?.httpRoutes) return null;
  if (module.httpRoutes.length > MAX_HTTP_ROUTES) {
    throw new DeployError("InvalidHttpRoutes", `http.ts defines more than ${MAX_HTTP_ROUTES} routes`);
  }
  for (const route of module.httpRoutes) {
    if (!HTTP_METHODS.has(route.method)) {
      throw new DeployError("InvalidHttpRoutes", `http.ts: route ${route.path} has unsupported method ${route.method}`);
    }
    if (!route.path.startsWith("/") || route.path.startsWith("/.files/")) {
      throw new DeployError("InvalidHttpRoutes", `http.ts: route path ${route.path} is not allowed`);
    }
  }
  return module.httpRoutes;
}

/** `analysis[""].functions` of the start_push response. */
export function functionsForCli(
  analysis: DeploymentAnalysis,
  crons: Record<string, CronSpec>,
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const module of analysis.modules) {
    result[module.path] = {
      functions: module.functions.map((fn) => ({
        name: fn.name,
        pos: null,
        udfType: fn.udfType,
        visibility: fn.visibility,
        args: fn.args,
        returns: fn.returns,
      })),
      httpRoutes: module.httpRoutes,
      cronSpecs: module.path === "crons.js" ? crons : null,
      sourceMapped: null,
    };
  }
  return result;
}
