/**
 * finish_push's `componentDiffs`: per instance path, how the push changes it (create, modify, remount, unmount) and
 * what it changes in its modules, crons, indexes and schema. The CLI prints "Installed component X." etc. from it.
 */
import type { ComponentPath } from "../components/mod.ts";
import type { DeploymentAnalysis } from "../runtime/mod.ts";
import type { CronSpec } from "./analysis_checks.ts";
import { indexConfig, type IndexPlan, PENDING_INDEX_MARKER } from "./schema.ts";
import type { DeployBackend } from "./types.ts";

/** What a push replaces: each mounted instance's analysis and module paths, and the unmounted paths. */
export interface PreviousState {
  byPath: Map<ComponentPath, { analysis: DeploymentAnalysis; modules: string[] }>;
  unmounted: Set<ComponentPath>;
}

export function previousState(deployments: PushCoordinatorStore): PreviousState {
  const byPath: PreviousState["byPath"] = new Map();
  const active = deployments.active;
  if (active) {
    byPath.set("", { analysis: active.analysis, modules: deployments.moduleRecords.map((record) => record.path) });
    for (const component of deployments.componentRecords) {
      byPath.set(component.path, { analysis: component.analysis, modules: component.modules.map((m) => m.path) });
    }
  }
  return { byPath, unmounted: new Set(deployments.unmountedComponents) };
}

type PushCoordinatorStore = DeployBackend["deployments"];

/** One entry of finish_push's `componentDiffs` (convex `lib/deployApi/finishPush.js`). */
export function componentDiff(
  type: "create" | "modify" | "remount" | "unmount",
  before: { analysis: DeploymentAnalysis; modules: string[] } | null,
  after: { analysis: DeploymentAnalysis; modules: string[]; crons: Record<string, CronSpec> } | null,
  plan: IndexPlan | null,
): Record<string, unknown> {
  const previousCrons = cronsOf(before?.analysis ?? null);
  const nextCrons: Record<string, unknown> = after?.crons ?? {};
  const previousModules = before?.modules ?? [];
  const nextModules = after?.modules ?? [];
  return {
    diffType: { type },
    moduleDiff: {
      added: nextModules.filter((path) => !previousModules.includes(path)),
      removed: previousModules.filter((path) => !nextModules.includes(path)),
    },
    udfConfigDiff: null,
    cronDiff: {
      added: Object.keys(nextCrons).filter((name) => !(name in previousCrons)),
      updated: Object.keys(nextCrons).filter((name) =>
        name in previousCrons && JSON.stringify(previousCrons[name]) !== JSON.stringify(nextCrons[name])
      ),
      deleted: Object.keys(previousCrons).filter((name) => !(name in nextCrons)),
    },
    indexDiff: plan ? indexDiffOf(plan) : { added_indexes: [], removed_indexes: [] },
    schemaDiff: {
      previous_schema: before?.analysis.schemaJson ?? null,
      next_schema: after?.analysis.schemaJson ?? null,
    },
  };
}

export function indexDiffOf(plan: IndexPlan): Record<string, unknown> {
  return {
    added_indexes: plan.added.map((added) => indexConfig(added.name, added.fields)),
    removed_indexes: plan.removed
      .filter((index) => !index.name.includes(PENDING_INDEX_MARKER))
      .map((index) => indexConfig(index.name, index.fields)),
  };
}

export function cronsOf(analysis: DeploymentAnalysis | null): Record<string, unknown> {
  const json = analysis?.modules.find((module) => module.path === "crons.js")?.cronsJson;
  return json ? JSON.parse(json) : {};
}
