/**
 * The push protocol's server side (convex-compat.md §5.4): `start_push` evaluates the component definitions into an
 * instance tree (component_definitions.ts), analyzes the app's and every instance's code and schema, and starts index
 * backfills and document validation per instance namespace in the background; `wait_for_schema` reports their
 * progress; `finish_push` switches code, schemas, indexes, crons and auth of the whole tree together. Nothing the old
 * code can observe changes before `finish_push` (new indexes and tables exist but are not ready or not used), so a
 * failed push leaves it serving unchanged. Instances dropped from the tree are unmounted: their tables stay.
 */
import { indexFunctions } from "../functions/mod.ts";
import {
  checkedComponentTree,
  type ComponentInstance,
  componentInstances,
  type ComponentPath,
  type DefinitionPath,
} from "../components/mod.ts";
import type { Catalog } from "../database/mod.ts";
import type { DeploymentAnalysis } from "../runtime/mod.ts";
import { AnalyzeError, ModuleLoadError } from "../runtime/mod.ts";
import { checkCrons, checkHttpRoutes, type CronSpec, functionsForCli } from "./analysis_checks.ts";
import { type AuthProvider, checkAuthConfig, providerLabel } from "./auth_config.ts";
import {
  finalCatalog,
  type IndexPlan,
  namespaceCatalog,
  type ParsedSchema,
  parseSchema,
  planIndexes,
  updateNamespace,
  withPendingIndexes,
} from "./schema.ts";
import { type ComponentToPrepare, DeployError, type PreparedDeployment } from "./store.ts";
import { evaluateComponents, type PushedComponentDefinition } from "./component_definitions.ts";
import { checkComponentEnv } from "./component_env.ts";
import { recordHttpMounts } from "./http_mounts.ts";
import { componentDiff, indexDiffOf, type PreviousState, previousState } from "./push_diff.ts";
import {
  checkModuleSet,
  parseComponentDefinitions,
  parseDependencies,
  parseModule,
  parseModules,
  parseNodeDependencies,
  parseUnchanged,
} from "./push_request.ts";
import type { DeployBackend } from "./types.ts";
import { findSchemaViolation, type SchemaViolation } from "./validate_documents.ts";

/** Pushes kept between start_push and finish_push; the oldest is forgotten beyond this. */
const MAX_PENDING_PUSHES = 8;
/** A push not finished within this is forgotten. */
const PUSH_EXPIRY_MS = 60 * 60_000;
/** Longest long poll of wait_for_schema, whatever the client asks. */
const MAX_WAIT_MS = 30_000;
const SERVER_VERSION = "1.48.0";

/** The schema work of one component instance of a push (the app is the instance `""`). */
interface NamespacePush {
  path: ComponentPath;
  analysis: DeploymentAnalysis;
  schema: ParsedSchema | null;
  plan: IndexPlan;
  crons: Record<string, CronSpec>;
  indexesComplete: number;
  validationComplete: boolean;
  /** The snapshot the documents were validated at. */
  validatedAtTs: bigint | null;
}

/** The state of one started push. */
interface PendingPush {
  id: string;
  dryRun: boolean;
  createdAtMs: number;
  prepared: PreparedDeployment;
  /** The app first, then every instance, parents before children. */
  namespaces: NamespacePush[];
  appAuth: AuthProvider[];
  failure: (SchemaViolation & { componentPath: ComponentPath }) | null;
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
    const pushedComponents = parseComponentDefinitions(body.componentDefinitions);
    const evaluated = await evaluateComponents(
      app.definition ? parseModule(app.definition, "appDefinition.definition") : null,
      parseDependencies(app.dependencies, "appDefinition"),
      pushedComponents,
      (definitionModules) => backend.deployments.evaluateDefinition(definitionModules),
    );
    checkComponentEnv(evaluated.root, evaluated.definitions, backend.deployments.environmentVariables);
    const changed = parseModules(app.changedModules, "changedModules");
    const unchanged = parseUnchanged(app.unchangedModuleHashes);
    const modules = await backend.deployments.resolveModules(changed, unchanged);
    if (app.schema) modules.push({ ...parseModule(app.schema, "schema"), path: "schema.js" });
    checkModuleSet(modules);
    const components = componentsToPrepare(evaluated.root, pushedComponents);

    const environment = this.#functionEnvironment();
    let prepared: PreparedDeployment;
    try {
      prepared = await backend.deployments.prepare(
        modules,
        environment,
        childrenOf(evaluated.root),
        components,
        parseNodeDependencies(body.nodeDependencies),
      );
    } catch (error) {
      if (error instanceof AnalyzeError || error instanceof ModuleLoadError) {
        throw new DeployError("InvalidModules", `Loading the pushed modules failed: ${error.message}`);
      }
      throw error;
    }
    recordHttpMounts(prepared, evaluated.root, evaluated.definitions);
    const analysis = prepared.analysis;
    const appAuth = checkAuthConfig(
      modules.find((module) => module.path === "auth.config.js"),
      analysis.authConfig,
      analysis.authConfigMissingEnv ?? [],
    );
    const namespaces = [
      { path: "", analysis },
      ...prepared.components.map((component) => ({ path: component.path, analysis: component.analysis })),
    ].map(({ path, analysis }) => namespacePush(path, analysis));
    const httpRoutes = new Map(namespaces.map((namespace) => [namespace.path, checkHttpRoutes(namespace.analysis)]));

    const database = backend.database;
    const planAll = (catalog: Catalog) => {
      const allocate = counter(nextIndexIdOf(catalog));
      for (const namespace of namespaces) {
        namespace.plan = planIndexes(namespaceCatalog(catalog, namespace.path), namespace.schema, allocate);
      }
    };
    planAll(database.catalog);
    if (!dryRun) {
      for (const namespace of namespaces) {
        // A new instance's own system tables; nothing reads them before finish_push makes its code live.
        if (namespace.path !== "") await database.mountComponent(namespace.path);
        for (const tableName of namespace.plan.newTables) await database.createTable(tableName, namespace.path);
      }
      await database.updateCatalog((current) => {
        planAll(current);
        let next = current;
        for (const namespace of namespaces) {
          next = updateNamespace(next, namespace.path, (view) => withPendingIndexes(view, namespace.plan));
        }
        return next;
      });
    }

    const push: PendingPush = {
      id: crypto.randomUUID(),
      dryRun,
      createdAtMs: Date.now(),
      prepared,
      namespaces,
      appAuth,
      failure: null,
      done: Promise.resolve(),
      settled: false,
    };
    push.done = dryRun ? Promise.resolve() : this.#runBackgroundWork(push);
    push.done.then(() => push.settled = true);
    this.#remember(push);

    const analysisByDefinition: Record<string, unknown> = {};
    for (const [definitionPath, definition] of evaluated.definitions) {
      const namespace = definitionPath === ""
        ? namespaces[0]
        : namespaces.find((candidate) => instanceDefinition(evaluated.root, candidate.path) === definitionPath);
      analysisByDefinition[definitionPath] = {
        definition,
        schema: namespace?.schema?.raw ?? null,
        functions: namespace ? functionsForCli(namespace.analysis, namespace.crons) : {},
        udfConfig: { serverVersion: SERVER_VERSION, importPhaseRngSeed: null, importPhaseUnixTimestamp: null },
      };
    }
    const indexDiffs: Record<string, unknown> = {};
    for (const namespace of namespaces) indexDiffs[namespace.path] = indexDiffOf(namespace.plan);
    return {
      environmentVariables: backend.deployments.environmentVariables,
      externalDepsId: null,
      componentDefinitionPackages: {},
      appAuth,
      analysis: analysisByDefinition,
      app: checkedComponentTree(
        evaluated.root,
        evaluated.definitions,
        (instance) => httpRoutes.get(instance.path) ?? null,
      ),
      schemaChange: { allocatedComponentIds: {}, schemaIds: { "": push.id }, indexDiffs },
    };
  }

  /** Backfills the push's new indexes and validates existing documents, recording the outcome on `push`. */
  async #runBackgroundWork(push: PendingPush): Promise<void> {
    const database = this.#backend.database;
    const work = push.namespaces.flatMap((namespace) => {
      const backfills = namespace.plan.added.map(async (added) => {
        await this.#backfill(added.indexId);
        namespace.indexesComplete++;
      });
      const validation = (async () => {
        if (!namespace.schema) return;
        const snapshotTs = database.latestTs;
        const violation = await findSchemaViolation(database, namespace.schema, snapshotTs, namespace.path);
        namespace.validatedAtTs = snapshotTs;
        if (violation) push.failure ??= { ...violation, componentPath: namespace.path };
      })().finally(() => namespace.validationComplete = true);
      return [validation, ...backfills];
    });
    const results = await Promise.allSettled(work);
    for (const result of results) {
      if (result.status === "rejected") {
        const message = result.reason instanceof Error ? result.reason.message : String(result.reason);
        push.failure ??= { tableName: "", message: `Preparing the schema failed: ${message}`, componentPath: "" };
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
        componentPath: push.failure.componentPath,
        tableName: push.failure.tableName || null,
      };
    }
    if (push.settled) return { type: "complete" };
    const components: Record<string, unknown> = {};
    for (const namespace of push.namespaces) {
      components[namespace.path] = {
        schemaValidationComplete: namespace.validationComplete,
        indexesComplete: namespace.indexesComplete,
        indexesTotal: namespace.plan.added.length,
      };
    }
    return { type: "inProgress", components };
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
    for (const namespace of push.namespaces) {
      if (push.failure || !namespace.schema || namespace.validatedAtTs === database.latestTs) continue;
      // Old code may have written since the validation snapshot; check again right before switching.
      const violation = await findSchemaViolation(database, namespace.schema, database.latestTs, namespace.path);
      if (violation) push.failure = { ...violation, componentPath: namespace.path };
    }
    if (push.failure) {
      const where = push.failure.componentPath === "" ? "" : ` in component ${push.failure.componentPath}`;
      throw new DeployError("SchemaValidationFailed", `Schema validation failed${where}: ${push.failure.message}`);
    }
    const deployments = this.#backend.deployments;
    const previous = previousState(deployments);
    await deployments.activate(push.prepared, async () => {
      await database.updateCatalog((current) => {
        let next = current;
        for (const namespace of push.namespaces) {
          next = updateNamespace(next, namespace.path, (view) => finalCatalog(view, namespace.plan, namespace.schema));
        }
        return next;
      });
    });
    this.#pushes.delete(push.id);
    return this.#diff(push, previous);
  }

  #diff(push: PendingPush, previous: PreviousState): Record<string, unknown> {
    const nextAuth = push.appAuth.map(providerLabel);
    const previousAuth = authOf(previous.byPath.get("")?.analysis ?? null).map(providerLabel);
    const componentDiffs: Record<string, unknown> = {};
    const mounted = new Map<ComponentPath, string[]>([
      ["", push.prepared.records.map((record) => record.path)],
      ...push.prepared.components.map((c): [ComponentPath, string[]] => [c.path, c.modules.map((m) => m.path)]),
    ]);
    for (const namespace of push.namespaces) {
      const before = previous.byPath.get(namespace.path) ?? null;
      const type = before ? "modify" : previous.unmounted.has(namespace.path) ? "remount" : "create";
      componentDiffs[namespace.path] = componentDiff(
        type,
        before,
        { analysis: namespace.analysis, modules: mounted.get(namespace.path) ?? [], crons: namespace.crons },
        namespace.plan,
      );
    }
    for (const [path, before] of previous.byPath) {
      if (mounted.has(path)) continue;
      componentDiffs[path] = componentDiff("unmount", before, null, null);
    }
    return {
      authDiff: {
        added: nextAuth.filter((label) => !previousAuth.includes(label)),
        removed: previousAuth.filter((label) => !nextAuth.includes(label)),
      },
      definitionDiffs: {},
      componentDiffs,
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

/** A namespace's push state before planning: its schema and crons checked. */
function namespacePush(path: ComponentPath, analysis: DeploymentAnalysis): NamespacePush {
  const where = path === "" ? "" : `Component ${path}: `;
  try {
    return {
      path,
      analysis,
      schema: analysis.schemaJson ? parseSchema(analysis.schemaJson) : null,
      plan: { added: [], removed: [], newTables: [] },
      crons: checkCrons(analysis, indexFunctions(analysis)),
      indexesComplete: 0,
      validationComplete: false,
      validatedAtTs: null,
    };
  } catch (error) {
    if (where === "" || !(error instanceof DeployError)) throw error;
    throw new DeployError(error.code, where + error.message);
  }
}

/** What `prepare` needs of every instance below the app, parents first. */
function componentsToPrepare(
  root: ComponentInstance,
  definitions: PushedComponentDefinition[],
): ComponentToPrepare[] {
  const byPath = new Map(definitions.map((definition) => [definition.definitionPath, definition]));
  return componentInstances(root).slice(1).map((instance) => {
    const definition = byPath.get(instance.definitionPath)!;
    const modules = [...definition.functions];
    if (definition.schema) modules.push({ ...definition.schema, path: "schema.js" });
    checkModuleSet(modules, instance.path);
    return {
      path: instance.path,
      definitionPath: instance.definitionPath,
      modules,
      env: instance.env,
      children: childrenOf(instance),
    };
  });
}

function childrenOf(instance: ComponentInstance): [string, ComponentPath][] {
  return [...instance.children].map(([name, child]) => [name, child.path]);
}

function instanceDefinition(root: ComponentInstance, path: ComponentPath): DefinitionPath | null {
  return componentInstances(root).find((instance) => instance.path === path)?.definitionPath ?? null;
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

function authOf(analysis: DeploymentAnalysis | null): AuthProvider[] {
  const providers = (analysis?.authConfig as { providers?: unknown } | null)?.providers;
  return Array.isArray(providers) ? providers as AuthProvider[] : [];
}
