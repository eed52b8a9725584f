/**
 * The server side of the dashboard's other pages: overview, functions (list and run), the log tail, scheduled
 * functions and crons, files, environment variables and the schema. Each reads the backend through the same
 * interfaces the admin API uses; runs go through the executor as an admin caller (internal functions allowed).
 */
import { SCHEDULED_FUNCTIONS_TABLE } from "../database/mod.ts";
import type { LoggedExecution } from "../functions/mod.ts";
import { identityFromAttributes } from "../auth/mod.ts";
import { compileSchedule, cronsByComponentOf, readJob, setJobState } from "../scheduler/mod.ts";
import { parseStorageDocument } from "../storage/mod.ts";
import { formatValidator, type JsonValue, parseConvexJsonText } from "../values/mod.ts";
import { componentPaths, idTablesOf, type TableCounts, userTables } from "./data_api.ts";
import { badRequest, type DashboardBackend, DashboardError } from "./types.ts";

/** Most log entries in one response (a tail that fell behind catches up over several). */
export const MAX_LOG_ENTRIES = 500;
/** Longest wait of a log or change long poll; below common proxy idle timeouts. */
export const MAX_POLL_MS = 25_000;
/** Scheduled functions listed per component. */
const MAX_LISTED_JOBS = 300;
/** Largest args (JSON bytes) a listed scheduled function carries; larger ones are listed by size. */
const MAX_LISTED_ARGS_BYTES = 4 * 1024;
/** Files listed per component. */
const MAX_LISTED_FILES = 500;
/** The window the overview's rates cover. */
const RATE_WINDOW_MS = 5 * 60 * 1000;
/** Largest args text of a run. */
const MAX_RUN_ARGS_BYTES = 1024 * 1024;

/** The Overview page. */
export async function overview(
  backend: DashboardBackend,
  counts: TableCounts,
  version: string,
  startedAtMs: number,
) {
  const database = backend.database;
  const location = database.persistence.location;
  const active = backend.deployments.active;
  const tables = [];
  for (const componentPath of componentPaths(database, active?.components.keys() ?? [])) {
    for (const table of userTables(database, componentPath)) {
      const { count, capped } = await counts.count(table);
      tables.push({ componentPath, name: table.name, count, countCapped: capped });
    }
  }
  const functions = { query: 0, mutation: 0, action: 0, httpRoutes: 0 };
  for (const component of active?.components.values() ?? []) {
    for (const fn of component.functions.values()) functions[fn.udfType]++;
    for (const module of component.analysis.modules) functions.httpRoutes += module.httpRoutes?.length ?? 0;
  }
  const recent = backend.executionLog.after(0).filter((entry) => entry.startedAtMs >= Date.now() - RATE_WINDOW_MS);
  const failures = backend.executionLog.after(0).filter((entry) => !entry.ok).slice(-10).reverse();
  return {
    version,
    uptimeMs: Date.now() - startedAtMs,
    database: { kind: location.kind, sizeBytes: await databaseSizeBytes(location) },
    urls: { cloud: backend.urls.cloudUrl, site: backend.urls.siteUrl },
    deployed: active !== null,
    components: active ? [...active.components.keys()].filter((path) => path !== "").sort() : [],
    tables,
    functions,
    rates: {
      windowMs: RATE_WINDOW_MS,
      executions: recent.length,
      failures: recent.filter((entry) => !entry.ok).length,
    },
    recentFailures: failures.map(logEntry),
  };
}

/** The SQLite file and its WAL; null where the size is the database server's business. */
async function databaseSizeBytes(location: DashboardBackend["database"]["persistence"]["location"]) {
  if (location.kind !== "sqlite") return null;
  let total = 0;
  for (const path of [location.path, `${location.path}-wal`]) {
    try {
      total += (await Deno.stat(path)).size;
    } catch { /* no WAL right now */ }
  }
  return total;
}

/** Every function of every component, with kind, visibility and validators. */
export function listFunctions(backend: DashboardBackend) {
  const active = backend.deployments.active;
  if (!active) return [];
  const functions = [];
  for (const [componentPath, component] of [...active.components].sort(([a], [b]) => a.localeCompare(b))) {
    for (const fn of [...component.functions.values()].sort((a, b) => a.key.localeCompare(b.key))) {
      functions.push({
        componentPath,
        path: fn.key.replace(/\.js:/, ":").replace(/:default$/, ""),
        udfType: fn.udfType,
        visibility: fn.visibility,
        args: fn.argsValidator ? formatValidator(fn.argsValidator) : "any",
        returns: fn.returnsValidator ? formatValidator(fn.returnsValidator) : null,
        argsJson: fn.argsValidator,
      });
    }
    for (const module of component.analysis.modules) {
      for (const route of module.httpRoutes ?? []) {
        functions.push({
          componentPath,
          path: `${route.method} ${route.path}`,
          udfType: "httpAction" as const,
          visibility: "public" as const,
          args: "",
          returns: null,
          argsJson: null,
        });
      }
    }
  }
  return functions;
}

/** Runs a function as an admin (optionally as a user identity) and reports result, logs and time. */
export async function runFunction(backend: DashboardBackend, body: Record<string, unknown>) {
  const path = stringField(body, "path");
  const componentPath = typeof body.componentPath === "string" ? body.componentPath : "";
  const argsText = typeof body.args === "string" && body.args.trim() !== "" ? body.args : "{}";
  if (argsText.length > MAX_RUN_ARGS_BYTES) throw badRequest(`Arguments larger than ${MAX_RUN_ARGS_BYTES} bytes`);
  let args: JsonValue;
  try {
    parseConvexJsonText(argsText);
    args = JSON.parse(argsText) as JsonValue;
  } catch (error) {
    throw badRequest(`The arguments are not valid Convex JSON: ${(error as Error).message}`, "InvalidJson");
  }
  if (args === null || typeof args !== "object" || Array.isArray(args)) throw badRequest("Arguments must be an object");
  let identityJson: string | null = null;
  if (typeof body.identity === "string" && body.identity.trim() !== "") {
    try {
      identityJson = JSON.stringify(identityFromAttributes(JSON.parse(body.identity)));
    } catch (error) {
      throw badRequest(`The identity is not usable: ${(error as Error).message}`, "InvalidIdentity");
    }
  }
  const startedMs = performance.now();
  const result = await backend.executor.call({ path, args, identityJson, allowInternal: true, componentPath });
  const executionMs = performance.now() - startedMs;
  if (result.ok) {
    const value = JSON.parse(result.valueJson) as JsonValue;
    const idTables = idTablesOf(backend.database, componentPath, [value]);
    return { ok: true, value, idTables, logLines: result.logLines, executionMs };
  }
  return {
    ok: false,
    errorMessage: result.errorMessage,
    errorData: result.errorData ?? null,
    logLines: result.logLines,
    executionMs,
  };
}

function logEntry(entry: LoggedExecution) {
  return {
    cursor: entry.cursor,
    udfType: entry.udfType,
    componentPath: entry.componentPath ?? "",
    functionName: entry.displayName,
    ok: entry.ok,
    errorMessage: entry.errorMessage ?? null,
    logLines: entry.logLines,
    startedAtMs: entry.startedAtMs,
    executionTimeMs: entry.executionTimeMs,
    requestId: entry.requestId,
  };
}

/** Log entries after `cursor` (0: the latest backlog), waiting up to {@link MAX_POLL_MS} for new ones. */
export async function tailLogs(backend: DashboardBackend, cursorText: string | undefined, signal: AbortSignal) {
  const cursor = Number(cursorText ?? "0");
  if (!Number.isSafeInteger(cursor) || cursor < 0) throw badRequest("cursor must be a non-negative integer");
  const log = backend.executionLog;
  // A cursor from before a restart is ahead of ours: start from our head.
  const from = cursor > log.headCursor ? log.headCursor : cursor;
  const entries = cursor === 0 ? log.after(0).slice(-MAX_LOG_ENTRIES) : await log.waitAfter(from, MAX_POLL_MS, signal);
  const sent = entries.slice(0, MAX_LOG_ENTRIES);
  return {
    entries: sent.map(logEntry),
    cursor: sent.length > 0 ? sent[sent.length - 1].cursor : Math.max(from, log.headCursor),
  };
}

/** Waits until a commit after `tsText` (or the timeout) and returns the latest ts: the Data page's live updates. */
export async function waitForCommit(backend: DashboardBackend, tsText: string | undefined, signal: AbortSignal) {
  let after: bigint;
  try {
    after = BigInt(tsText ?? "0");
  } catch {
    throw badRequest("ts must be an integer");
  }
  const database = backend.database;
  if (database.latestTs <= after) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, MAX_POLL_MS);
      const unsubscribe = database.onCommit(done);
      signal.addEventListener("abort", done);
    });
  }
  return { ts: database.latestTs.toString() };
}

/** Scheduled functions of every component, newest first, and the crons with their next runs. */
export async function listSchedules(backend: DashboardBackend) {
  const database = backend.database;
  const active = backend.deployments.active;
  const jobs = [];
  for (const componentPath of componentPaths(database, active?.components.keys() ?? [])) {
    if (!database.catalogView.forComponent(componentPath).index(`${SCHEDULED_FUNCTIONS_TABLE}.by_creation_time`)) {
      continue;
    }
    const rows = await database.readSnapshot(undefined, { componentPath }).scan(
      `${SCHEDULED_FUNCTIONS_TABLE}.by_creation_time`,
      { order: "desc", limit: MAX_LISTED_JOBS },
    );
    for (const row of rows) {
      const document = JSON.parse(row.json) as {
        name: string;
        args?: JsonValue[];
        scheduledTime: number;
        completedTime?: number;
        _creationTime: number;
        state: { kind: string; error?: string };
      };
      const args = document.args?.[0] ?? {};
      const argsBytes = JSON.stringify(args).length;
      jobs.push({
        id: row.id,
        componentPath,
        name: document.name,
        // Scheduled args may be megabytes; the list shows small ones and the size of others.
        args: argsBytes <= MAX_LISTED_ARGS_BYTES ? args : null,
        argsBytes,
        scheduledTimeMs: document.scheduledTime,
        completedTimeMs: document.completedTime ?? null,
        creationTimeMs: document._creationTime,
        state: document.state.kind,
        error: document.state.error ?? null,
      });
    }
  }
  const crons = [];
  const nowMs = Date.now();
  for (const [componentPath, cronsJson] of cronsByComponentOf(active)) {
    if (cronsJson === null) continue;
    const specs = JSON.parse(cronsJson) as Record<string, { name: string; args: JsonValue[]; schedule: unknown }>;
    for (const [identifier, spec] of Object.entries(specs)) {
      let nextRunMs: number | null = null;
      try {
        // deno-lint-ignore no-explicit-any
        const next = compileSchedule(spec.schedule as any).nextRunMs(nowMs);
        nextRunMs = Number.isFinite(next) ? next : null;
      } catch { /* an unparsable schedule shows without a next run */ }
      crons.push({ componentPath, identifier, name: spec.name, schedule: spec.schedule, nextRunMs });
    }
  }
  return { jobs, crons };
}

/** Cancels a pending (or running action) job; a finished one is refused with a message. */
export async function cancelJob(backend: DashboardBackend, body: Record<string, unknown>) {
  const id = stringField(body, "id");
  const componentPath = typeof body.componentPath === "string" ? body.componentPath : "";
  const { value } = await backend.database.runSystemTransaction(async (tx) => {
    const job = await readJob(tx, id, componentPath);
    if (!job) return "missing";
    if (job.state.kind !== "pending" && job.state.kind !== "inProgress") return job.state.kind;
    await setJobState(tx, id, { kind: "canceled" });
    return "canceled";
  }, { componentPath, label: "dashboard: cancel a scheduled function" });
  if (value === "missing") throw new DashboardError(404, "JobNotFound", `Scheduled function ${id} does not exist`);
  if (value !== "canceled") throw badRequest(`The scheduled function is already ${value}`, "JobFinished");
  return { canceled: true };
}

/** Stored files of every component, newest first. */
export async function listFiles(backend: DashboardBackend) {
  const database = backend.database;
  const files = [];
  for (const componentPath of componentPaths(database, backend.deployments.active?.components.keys() ?? [])) {
    if (!database.catalogView.forComponent(componentPath).index("_storage.by_creation_time")) continue;
    const rows = await database.readSnapshot(undefined, { componentPath }).scan("_storage.by_creation_time", {
      order: "desc",
      limit: MAX_LISTED_FILES,
    });
    for (const row of rows) files.push({ componentPath, ...parseStorageDocument(row.json) });
  }
  return files;
}

/** The pushed schema of every namespace: tables, validators, indexes with their backfill state, search indexes. */
export function schemaOf(backend: DashboardBackend) {
  const database = backend.database;
  const catalog = database.catalog;
  return componentPaths(database, backend.deployments.active?.components.keys() ?? []).map((componentPath) => ({
    componentPath,
    schemaValidation: componentPath === ""
      ? catalog.schemaValidation
      : catalog.componentSchemaValidation?.[componentPath] ?? false,
    tables: userTables(database, componentPath).map((table) => ({
      name: table.name,
      documentType: table.documentType ? formatValidator(table.documentType) : null,
      indexes: table.indexes.map((index) => ({
        name: index.name.slice(table.name.length + 1),
        fields: index.fields,
        ready: index.ready,
      })),
      searchIndexes: (table.searchIndexes ?? []).map((index) => ({
        name: index.name.slice(table.name.length + 1),
        searchField: index.searchField,
        filterFields: index.filterFields,
      })),
    })),
  }));
}

/** Environment variables, sorted by name. */
export function listEnvironment(backend: DashboardBackend) {
  const variables = backend.deployments.environmentVariables;
  return Object.keys(variables).sort().map((name) => ({ name, value: variables[name] }));
}

/** Applies `{changes: [{name, value|null}]}` through the deployment store (its checks and limits apply). */
export async function updateEnvironment(backend: DashboardBackend, body: Record<string, unknown>) {
  const changes = body.changes;
  if (!Array.isArray(changes) || changes.length === 0 || changes.length > 100) {
    throw badRequest("changes must be a list of 1 to 100 changes");
  }
  const parsed = changes.map((change) => {
    const { name, value } = (change ?? {}) as Record<string, unknown>;
    if (typeof name !== "string" || (value !== null && typeof value !== "string")) {
      throw badRequest("Each change needs a string name and a string or null value");
    }
    return { name, value: value as string | null };
  });
  try {
    await backend.deployments.updateEnvironment(parsed);
  } catch (error) {
    throw badRequest((error as Error).message, "InvalidEnvironmentVariables");
  }
  return listEnvironment(backend);
}

export function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== "string" || value === "") throw badRequest(`\`${name}\` must be a non-empty string`);
  return value;
}
