/**
 * The push protocol's server side (convex-compat.md §5.4): `start_push` analyzes the new code and schema and starts
 * index backfills and document validation in the background; `wait_for_schema` reports their progress; `finish_push`
 * switches code, schema, indexes, crons and auth together. Nothing the old code can observe changes before
 * `finish_push` (new indexes exist but are not ready, hence invisible), so a failed push leaves it serving unchanged.
 */
import { indexFunctions } from "../functions/mod.ts";
import type { Catalog } from "../database/mod.ts";
import type { DeploymentAnalysis, ModuleConfig } from "../runtime/mod.ts";
import { AnalyzeError, ModuleLoadError } from "../runtime/mod.ts";
import { checkCrons, checkHttpRoutes, type CronSpec, functionsForCli } from "./analysis_checks.ts";
import { type AuthProvider, checkAuthConfig, providerLabel } from "./auth_config.ts";
import {
  finalCatalog,
  indexConfig,
  type IndexPlan,
  type ParsedSchema,
  parseSchema,
  PENDING_INDEX_MARKER,
  planIndexes,
  withPendingIndexes,
} from "./schema.ts";
import { DeployError, type PreparedDeployment } from "./store.ts";
import type { DeployBackend } from "./types.ts";
import { findSchemaViolation, type SchemaViolation } from "./validate_documents.ts";

/** Pushes kept between start_push and finish_push; the oldest is forgotten beyond this. */
const MAX_PENDING_PUSHES = 8;
/** A push not finished within this is forgotten. */
const PUSH_EXPIRY_MS = 60 * 60_000;
/** Longest long poll of wait_for_schema, whatever the client asks. */
const MAX_WAIT_MS = 30_000;
/** Most modules of one push (the runtime's module writer has its own limit too). */
const MAX_PUSH_MODULES = 10_000;
const SERVER_VERSION = "1.48.0";

/** The state of one started push. */
interface PendingPush {
  id: string;
  dryRun: boolean;
  createdAtMs: number;
  prepared: PreparedDeployment;
  schema: ParsedSchema | null;
  plan: IndexPlan;
  appAuth: AuthProvider[];
  crons: Record<string, CronSpec>;
  indexesComplete: number;
  validationComplete: boolean;
  /** The snapshot the documents were validated at. */
  validatedAtTs: bigint | null;
  failure: SchemaViolation | null;
  /** Settles when backfills and validation are over (it never rejects). */
  done: Promise<void>;
  settled: boolean;
}

/** `wait_for_schema`'s answer. */
export type SchemaStatus =
  | { type: "inProgress"; components: Record<string, unknown> }
  | { type: "failed"; error: string; componentPath: string; tableName: string | null }
  | { type: "raceDetected" }
  | { type: "complete" };

/** See the module comment. One per backend. */
export class PushCoordinator {
  readonly #backend: DeployBackend;
  readonly #pushes = new Map<string, PendingPush>();
  #latestPushId: string | null = null;
  readonly #backfills = new Map<number, Promise<void>>();
  #lock: Promise<unknown> = Promise.resolve();

  constructor(backend: DeployBackend) {
    this.#backend = backend;
  }

  /** Runs `task` after every earlier start/finish (pushes never interleave their catalog changes). */
  #serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(task, task);
    this.#lock = run.catch(() => {});
    return run;
  }

  /** `start_push`: throws DeployError (400 for the CLI) for anything wrong with the push. */
  start(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#serialized(() => this.#start(body));
  }

  async #start(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.#expire();
    const backend = this.#backend;
    const dryRun = body.dryRun === true;
    const app = body.appDefinition as Record<string, unknown> | undefined;
    if (!app || typeof app !== "object") throw new DeployError("InvalidPush", "The push has no appDefinition");
    if (Array.isArray(body.componentDefinitions) && body.componentDefinitions.length > 0) {
      throw new DeployError("ComponentsUnsupported", "Convex components are not supported by denvex yet");
    }
    if (Array.isArray(body.nodeDependencies) && body.nodeDependencies.length > 0) {
      throw new DeployError("NodeActionsUnsupported", '"use node" modules and external packages are not supported');
    }
    const changed = parseModules(app.changedModules, "changedModules");
    const unchanged = parseUnchanged(app.unchangedModuleHashes);
    const modules = await backend.deployments.resolveModules(changed, unchanged);
    if (app.schema) modules.push({ ...parseModule(app.schema, "schema"), path: "schema.js" });
    if (modules.length > MAX_PUSH_MODULES) {
      throw new DeployError("InvalidModules", `A push may hold at most ${MAX_PUSH_MODULES} modules`);
    }
    const paths = new Set<string>();
    for (const module of modules) {
      if (paths.has(module.path)) throw new DeployError("InvalidModules", `Module ${module.path} was pushed twice`);
      paths.add(module.path);
    }

    const environment = this.#functionEnvironment();
    let prepared: PreparedDeployment;
    try {
      prepared = await backend.deployments.prepare(modules, environment);
    } catch (error) {
      if (error instanceof AnalyzeError || error instanceof ModuleLoadError) {
        throw new DeployError("InvalidModules", `Loading the pushed modules failed: ${error.message}`);
      }
      throw error;
    }
    const analysis = prepared.analysis;
    const functions = indexFunctions(analysis);
    const appAuth = checkAuthConfig(
      modules.find((module) => module.path === "auth.config.js"),
      analysis.authConfig,
      environment,
    );
    const crons = checkCrons(analysis, functions);
    const httpRoutes = checkHttpRoutes(analysis);
    const schema = analysis.schemaJson ? parseSchema(analysis.schemaJson) : null;

    const database = backend.database;
    let plan = planIndexes(database.catalog, schema, counter(nextIndexIdOf(database.catalog)));
    if (!dryRun) {
      for (const tableName of plan.newTables) await database.createTable(tableName);
      await database.updateCatalog((current) => {
        plan = planIndexes(current, schema, counter(nextIndexIdOf(current)));
        return withPendingIndexes(current, plan);
      });
    }

    const push: PendingPush = {
      id: crypto.randomUUID(),
      dryRun,
      createdAtMs: Date.now(),
      prepared,
      schema,
      plan,
      appAuth,
      crons,
      indexesComplete: 0,
      validationComplete: false,
      validatedAtTs: null,
      failure: null,
      done: Promise.resolve(),
      settled: false,
    };
    push.done = dryRun ? Promise.resolve() : this.#runBackgroundWork(push);
    push.done.then(() => push.settled = true);
    this.#remember(push);

    const indexDiff = {
      added_indexes: plan.added.map((added) => indexConfig(added.name, added.fields)),
      removed_indexes: plan.removed
        .filter((index) => !index.name.includes(PENDING_INDEX_MARKER))
        .map((index) => indexConfig(index.name, index.fields)),
    };
    return {
      environmentVariables: backend.deployments.environmentVariables,
      externalDepsId: null,
      componentDefinitionPackages: {},
      appAuth,
      analysis: {
        "": {
          definition: {
            path: "",
            definitionType: { type: "app" },
            childComponents: [],
            httpMounts: {},
            exports: { type: "branch", branch: [] },
          },
          schema: schema?.raw ?? null,
          functions: functionsForCli(analysis, crons),
          udfConfig: { serverVersion: SERVER_VERSION, importPhaseRngSeed: null, importPhaseUnixTimestamp: null },
        },
      },
      app: {
        definitionPath: "",
        componentPath: "",
        args: {},
        childComponents: {},
        httpRoutes: { httpModuleRoutes: httpRoutes, mounts: [] },
        exports: {},
      },
      schemaChange: { allocatedComponentIds: {}, schemaIds: { "": push.id }, indexDiffs: { "": indexDiff } },
    };
  }

  /** Backfills the push's new indexes and validates existing documents, recording the outcome on `push`. */
  async #runBackgroundWork(push: PendingPush): Promise<void> {
    const database = this.#backend.database;
    const backfills = push.plan.added.map(async (added) => {
      await this.#backfill(added.indexId);
      push.indexesComplete++;
    });
    const validation = (async () => {
      if (!push.schema) return;
      const snapshotTs = database.latestTs;
      const violation = await findSchemaViolation(database, push.schema, snapshotTs);
      push.validatedAtTs = snapshotTs;
      if (violation) push.failure ??= violation;
    })().finally(() => push.validationComplete = true);
    const results = await Promise.allSettled([validation, ...backfills]);
    for (const result of results) {
      if (result.status === "rejected") {
        const message = result.reason instanceof Error ? result.reason.message : String(result.reason);
        push.failure ??= { tableName: "", message: `Preparing the schema failed: ${message}` };
      }
    }
  }

  /** One backfill per index, shared by pushes that want the same pending index. */
  #backfill(indexId: number): Promise<void> {
    const found = this.#backend.database.catalogView.indexById(indexId);
    if (found?.index.ready) return Promise.resolve();
    let running = this.#backfills.get(indexId);
    if (!running) {
      running = this.#backend.database.backfillIndex(indexId).finally(() => this.#backfills.delete(indexId));
      this.#backfills.set(indexId, running);
    }
    return running;
  }

  /** `wait_for_schema`: long-polls up to `timeoutMs` for the push's background work. */
  async wait(schemaChange: unknown, timeoutMs: number): Promise<SchemaStatus> {
    const push = this.#pushFor(schemaChange);
    if (!push) {
      return {
        type: "failed",
        error: "The server does not know this push (it restarted, or the push expired); push again",
        componentPath: "",
        tableName: null,
      };
    }
    if (push.id !== this.#latestPushId) return { type: "raceDetected" };
    const waitMs = Math.max(0, Math.min(Number.isFinite(timeoutMs) ? timeoutMs : MAX_WAIT_MS, MAX_WAIT_MS));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([push.done, new Promise((resolve) => timer = setTimeout(resolve, waitMs))]);
    clearTimeout(timer);
    if (push.failure) {
      return {
        type: "failed",
        error: push.failure.message,
        componentPath: "",
        tableName: push.failure.tableName || null,
      };
    }
    if (push.settled) return { type: "complete" };
    return {
      type: "inProgress",
      components: {
        "": {
          schemaValidationComplete: push.validationComplete,
          indexesComplete: push.indexesComplete,
          indexesTotal: push.plan.added.length,
        },
      },
    };
  }

  /** `finish_push`: makes the push live, or throws DeployError leaving the old deployment serving. */
  finish(startPush: unknown, dryRun: boolean): Promise<Record<string, unknown>> {
    return this.#serialized(() => this.#finish(startPush, dryRun));
  }

  async #finish(startPush: unknown, dryRun: boolean): Promise<Record<string, unknown>> {
    const schemaChange = (startPush as { schemaChange?: unknown } | null)?.schemaChange;
    const push = this.#pushFor(schemaChange);
    if (!push) throw new DeployError("PushNotFound", "The server does not know this push (it restarted?); push again");
    if (dryRun || push.dryRun) {
      this.#pushes.delete(push.id);
      return { authDiff: { added: [], removed: [] }, definitionDiffs: {}, componentDiffs: {} };
    }
    if (push.id !== this.#latestPushId) {
      throw new DeployError("RaceDetected", "Schema was overwritten by another push.");
    }
    await push.done;
    const database = this.#backend.database;
    if (!push.failure && push.schema && push.validatedAtTs !== database.latestTs) {
      // Old code may have written since the validation snapshot; check again right before switching.
      const snapshotTs = database.latestTs;
      push.failure = await findSchemaViolation(database, push.schema, snapshotTs);
    }
    if (push.failure) {
      throw new DeployError("SchemaValidationFailed", `Schema validation failed: ${push.failure.message}`);
    }
    const deployments = this.#backend.deployments;
    const previous = deployments.active?.analysis ?? null;
    const previousModules = deployments.moduleRecords.map((record) => record.path);
    await deployments.activate(push.prepared, async () => {
      await database.updateCatalog((current) => finalCatalog(current, push.plan, push.schema));
    });
    this.#pushes.delete(push.id);
    return this.#diff(push, previous, previousModules);
  }

  #diff(push: PendingPush, previous: DeploymentAnalysis | null, previousModules: string[]): Record<string, unknown> {
    const next = push.prepared.analysis;
    const nextModules = push.prepared.records.map((record) => record.path);
    const previousCrons = cronsOf(previous);
    const nextAuth = push.appAuth.map(providerLabel);
    const previousAuth = authOf(previous).map(providerLabel);
    return {
      authDiff: {
        added: nextAuth.filter((label) => !previousAuth.includes(label)),
        removed: previousAuth.filter((label) => !nextAuth.includes(label)),
      },
      definitionDiffs: {},
      componentDiffs: {
        "": {
          diffType: { type: previous ? "modify" : "create" },
          moduleDiff: {
            added: nextModules.filter((path) => !previousModules.includes(path)),
            removed: previousModules.filter((path) => !nextModules.includes(path)),
          },
          udfConfigDiff: null,
          cronDiff: {
            added: Object.keys(push.crons).filter((name) => !(name in previousCrons)),
            updated: Object.keys(push.crons).filter((name) =>
              name in previousCrons && JSON.stringify(previousCrons[name]) !== JSON.stringify(push.crons[name])
            ),
            deleted: Object.keys(previousCrons).filter((name) => !(name in push.crons)),
          },
          indexDiff: {
            added_indexes: push.plan.added.map((added) => indexConfig(added.name, added.fields)),
            removed_indexes: push.plan.removed
              .filter((index) => !index.name.includes(PENDING_INDEX_MARKER))
              .map((index) => indexConfig(index.name, index.fields)),
          },
          schemaDiff: { previous_schema: previous?.schemaJson ?? null, next_schema: next.schemaJson },
        },
      },
    };
  }

  /** Deployment env vars plus the system ones, as functions (and auth.config.js) see them. */
  #functionEnvironment(): Record<string, string> {
    const backend = this.#backend;
    return {
      ...backend.deployments.environmentVariables,
      CONVEX_CLOUD_URL: backend.urls.cloudUrl,
      CONVEX_SITE_URL: backend.urls.siteUrl,
    };
  }

  #pushFor(schemaChange: unknown): PendingPush | undefined {
    const id = (schemaChange as { schemaIds?: Record<string, unknown> } | null)?.schemaIds?.[""];
    return typeof id === "string" ? this.#pushes.get(id) : undefined;
  }

  #remember(push: PendingPush): void {
    this.#pushes.set(push.id, push);
    this.#latestPushId = push.id;
    while (this.#pushes.size > MAX_PENDING_PUSHES) {
      const oldest = this.#pushes.keys().next().value as string;
      this.#pushes.delete(oldest);
    }
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, push] of this.#pushes) {
      if (now - push.createdAtMs > PUSH_EXPIRY_MS) this.#pushes.delete(id);
    }
  }
}

function counter(first: number): () => number {
  let next = first;
  return () => next++;
}

function nextIndexIdOf(catalog: Catalog): number {
  let max = 0;
  for (const table of catalog.tables) for (const index of table.indexes) max = Math.max(max, index.indexId);
  return max + 1;
}

function cronsOf(analysis: DeploymentAnalysis | null): Record<string, unknown> {
  const json = analysis?.modules.find((module) => module.path === "crons.js")?.cronsJson;
  return json ? JSON.parse(json) : {};
}

function authOf(analysis: DeploymentAnalysis | null): AuthProvider[] {
  const providers = (analysis?.authConfig as { providers?: unknown } | null)?.providers;
  return Array.isArray(providers) ? providers as AuthProvider[] : [];
}

function parseModule(value: unknown, what: string): ModuleConfig {
  const module = value as Record<string, unknown> | null;
  if (
    !module || typeof module !== "object" || typeof module.path !== "string" || typeof module.source !== "string" ||
    (module.sourceMap !== undefined && module.sourceMap !== null && typeof module.sourceMap !== "string")
  ) {
    throw new DeployError("InvalidModules", `${what}: a module needs a string path and source`);
  }
  const environment = module.environment ?? "isolate";
  if (environment !== "isolate" && environment !== "node") {
    throw new DeployError("InvalidModules", `${what}: module ${module.path} has unknown environment ${environment}`);
  }
  return {
    path: module.path,
    source: module.source,
    sourceMap: typeof module.sourceMap === "string" ? module.sourceMap : undefined,
    environment,
  };
}

function parseModules(value: unknown, what: string): ModuleConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new DeployError("InvalidModules", `${what} must be a list`);
  return value.map((module) => parseModule(module, what));
}

function parseUnchanged(value: unknown): { path: string; environment: "isolate" | "node"; sha256: string }[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new DeployError("InvalidModules", "unchangedModuleHashes must be a list");
  return value.map((entry) => {
    const { path, environment, sha256 } = (entry ?? {}) as Record<string, unknown>;
    if (
      typeof path !== "string" || typeof sha256 !== "string" || (environment !== "isolate" && environment !== "node")
    ) {
      throw new DeployError("InvalidModules", "unchangedModuleHashes entries need path, environment and sha256");
    }
    return { path, environment, sha256 };
  });
}
