/**
 * Built-in `_system/cli/...` queries the CLI calls (convex-compat.md §5.6), implemented on the server. The executor
 * runs them for admin callers only, at one snapshot. The table and function queries answer for the component the call
 * names (`npx convex data --component X`, `run --component X` listing X's functions); `""` is the app.
 */
import type { SystemFunction } from "../functions/mod.ts";
import { type Database, FIRST_USER_TABLE_NUMBER, type TableInfo } from "../database/mod.ts";
import { type JsonValue, keyFromBase64, keyToBase64 } from "../values/mod.ts";
import type { DeploymentStore } from "./store.ts";

/** What the system functions read of the backend (the server's `Backend` satisfies it). */
export interface SystemFunctionHost {
  readonly deployments: Pick<DeploymentStore, "environmentVariables" | "active" | "unmountedComponents">;
  readonly urls: { readonly cloudUrl: string };
}

/** Largest page `tableData` returns, whatever the caller asks. */
const MAX_PAGE_DOCUMENTS = 1_000;
/** Documents `tableSize` counts before giving up (it reports the count so far). */
const MAX_COUNTED_DOCUMENTS = 10_000_000;
const COUNT_PAGE_ROWS = 5_000;

/** Returns the lookup the executor's `systemFunction` hook expects (`displayName` without `:default`). */
export function systemFunctions(backend: SystemFunctionHost): (displayName: string) => SystemFunction | undefined {
  const functions: Record<string, SystemFunction> = {
    "_system/cli/queryEnvironmentVariables": () => {
      const variables = backend.deployments.environmentVariables;
      return Promise.resolve(
        Object.keys(variables).sort().map((name) => ({ name, value: variables[name] })),
      );
    },
    "_system/cli/queryEnvironmentVariables:get": (args) => {
      const name = stringArg(args, "name");
      const value = backend.deployments.environmentVariables[name];
      return Promise.resolve(value === undefined ? null : { name, value });
    },
    "_system/cli/tables": (_args, { database, componentPath = "" }) => {
      const page = userTables(database, componentPath).map((table) => ({ name: table.name }));
      return Promise.resolve({ page, isDone: true, continueCursor: "end" });
    },
    "_system/cli/tableSize": async (args, { database, snapshotTs, componentPath = "" }) => {
      const table = userTable(database, componentPath, stringArg(args, "tableName"));
      return table ? await countDocuments(database, table, snapshotTs) : 0;
    },
    "_system/cli/tableData": (args, { database, snapshotTs, componentPath = "" }) =>
      tableData(database, args, snapshotTs, componentPath),
    "_system/cli/modules:apiSpec": (_args, { componentPath = "" }) => Promise.resolve(apiSpec(backend, componentPath)),
    "_system/cli/convexUrl:cloudUrl": () => Promise.resolve(backend.urls.cloudUrl),
    "_system/frontend/components:list": () => Promise.resolve(componentList(backend)),
  };
  return (displayName) => Object.hasOwn(functions, displayName) ? functions[displayName] : undefined;
}

function stringArg(args: Record<string, JsonValue>, name: string): string {
  const value = args[name];
  if (typeof value !== "string") throw new Error(`ArgumentValidationError: \`${name}\` must be a string`);
  return value;
}

/**
 * The user tables of one namespace, by name. A component's system tables (`_scheduled_functions`, `_storage`) have
 * numbers above the app's fixed ones, so they are told apart by their `_` names.
 */
function userTables(database: Database, componentPath: string): TableInfo[] {
  return database.catalog.tables
    .filter((table) =>
      (table.componentPath ?? "") === componentPath && table.tableNumber >= FIRST_USER_TABLE_NUMBER &&
      !table.name.startsWith("_")
    )
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** The user table `name` of one namespace, if it exists. */
function userTable(database: Database, componentPath: string, name: string): TableInfo | undefined {
  return userTables(database, componentPath).find((table) => table.name === name);
}

async function countDocuments(database: Database, table: TableInfo, snapshotTs: bigint): Promise<number> {
  const snapshot = database.readSnapshot(snapshotTs, { componentPath: table.componentPath ?? "" });
  let count = 0;
  let resumeAfter: Uint8Array | undefined;
  while (count < MAX_COUNTED_DOCUMENTS) {
    const rows = await snapshot.scan(`${table.name}.by_id`, {
      ...(resumeAfter ? { resumeAfter } : {}),
      limit: COUNT_PAGE_ROWS,
    });
    count += rows.length;
    if (rows.length < COUNT_PAGE_ROWS) break;
    resumeAfter = rows[rows.length - 1].key;
  }
  return count;
}

/** `{table, order, paginationOpts}` → a page of documents in `_creationTime` order; the cursor is the last key. */
async function tableData(
  database: Database,
  args: Record<string, JsonValue>,
  snapshotTs: bigint,
  componentPath: string,
): Promise<JsonValue> {
  const table = userTable(database, componentPath, stringArg(args, "table"));
  const options = (args.paginationOpts ?? {}) as { numItems?: JsonValue; cursor?: JsonValue };
  const order = args.order === "asc" ? "asc" : "desc";
  if (!table) return { page: [], isDone: true, continueCursor: "end" };
  const requested = typeof options.numItems === "number" ? Math.floor(options.numItems) : 100;
  const numItems = Math.max(1, Math.min(requested, MAX_PAGE_DOCUMENTS));
  let cursorKey: Uint8Array | null = null;
  if (typeof options.cursor === "string" && options.cursor !== "" && options.cursor !== "end") {
    try {
      cursorKey = keyFromBase64(options.cursor);
    } catch {
      throw new Error("InvalidCursor: the cursor does not belong to this table");
    }
  }
  if (options.cursor === "end") return { page: [], isDone: true, continueCursor: "end" };
  const rows = await database.readSnapshot(snapshotTs, { componentPath }).scan(`${table.name}.by_creation_time`, {
    ...(cursorKey ? { resumeAfter: cursorKey } : {}),
    order,
    limit: numItems,
  });
  const page = rows.map((row) => JSON.parse(row.json));
  const isDone = rows.length < numItems;
  const continueCursor = rows.length > 0 ? keyToBase64(rows[rows.length - 1].key) : "end";
  return { page, isDone, continueCursor: isDone ? "end" : continueCursor };
}

/** `_system/cli/modules:apiSpec`: every function of one component of the active deployment, with validators (§5.6). */
function apiSpec(backend: SystemFunctionHost, componentPath: string): JsonValue {
  const active = backend.deployments.active;
  const analysis = componentPath === "" ? active?.analysis : active?.components.get(componentPath)?.analysis;
  if (!analysis) return [];
  const spec: JsonValue[] = [];
  for (const module of analysis.modules) {
    for (const fn of module.functions) {
      if (fn.udfType === "HttpAction") continue;
      spec.push({
        identifier: `${module.path}:${fn.name}`,
        functionType: fn.udfType,
        visibility: fn.visibility,
        args: fn.args === null ? null : JSON.parse(fn.args),
        returns: fn.returns === null ? null : JSON.parse(fn.returns),
      });
    }
    for (const route of module.httpRoutes ?? []) {
      spec.push({ functionType: "HttpAction", method: route.method, path: route.path });
    }
  }
  return spec;
}

/**
 * `_system/frontend/components:list`: every instance by path, the app first (path `""`), mounted ones `active` and
 * those a push dropped (their data kept) `unmounted`, as the dashboard and `npx convex run --inline-query --component`
 * read it. The path is an instance's identity here (its data is keyed by it), so it doubles as the id.
 */
function componentList(backend: SystemFunctionHost): JsonValue {
  const states = new Map<string, "active" | "unmounted">([["", "active"]]);
  for (const path of backend.deployments.unmountedComponents) states.set(path, "unmounted");
  for (const path of backend.deployments.active?.components.keys() ?? []) states.set(path, "active");
  return [...states.keys()].sort().map((path) => ({
    id: path,
    name: path === "" ? null : path.slice(path.lastIndexOf("/") + 1),
    path,
    args: {},
    state: states.get(path)!,
  }));
}
