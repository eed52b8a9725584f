/**
 * Running the server: opens the data directory, the database and the backend, serves the two HTTP origins, and shuts
 * them down in order on SIGINT/SIGTERM. Also the `admin-key` command.
 */
import { createApiApp, createSiteApp, type HttpDeps } from "../http/mod.ts";
import { adminKeyPath, readStoredAdminKey, resolveAdminKey, type ResolvedAdminKey } from "./admin_key.ts";
import type { ServeConfig } from "./config.ts";
import { assertDataDirAccess, assertNetworkInterfacesAccess, ensureDataDir, resolveDataDir } from "./data_dir.ts";
import { type DataDirLock, lockDataDir } from "./data_dir_lock.ts";
import { listen, type Listener } from "./listen.ts";
import { listenForStopSignals } from "./signals.ts";
import { describeLocation, openStorage, persistenceLocation } from "./storage.ts";
import { VERSION_TEXT } from "./version.ts";
import { type Backend, openBackend } from "./backend.ts";
import { SyncHub } from "../sync/mod.ts";
import { openServerLog, type ServerLog } from "./log.ts";
import { metricsEndpointEnabled, registerServerGauges } from "./observe.ts";
import { dashboardApp } from "../dashboard/mod.ts";

/**
 * How long a shutdown waits for in-flight requests before closing the database anyway. Long-lived connections
 * (sync WebSockets, streaming responses) would otherwise hold the process open forever.
 */
export const SHUTDOWN_GRACE_MS = 3_000;
/** How long closing the database may take (draining the committer) before the process gives up on it. */
export const DATABASE_CLOSE_TIMEOUT_MS = 5_000;

/**
 * Runs the server until a stop signal, then shuts down gracefully and resolves with the exit code (0). Throws a
 * `UsageError` for configuration problems found before anything is opened, other errors for failed startups.
 */
export async function runServer(config: ServeConfig): Promise<number> {
  const stop = listenForStopSignals();
  const stopCrashing = keepRunningOnStrayErrors();
  const log = openServerLog(config.logFormat);
  let dataDirLock: DataDirLock | null = null;
  try {
    const dataDir = resolveDataDir(config.dataDir);
    assertDataDirAccess(dataDir, ["read", "write"]);
    assertNetworkInterfacesAccess();
    await ensureDataDir(dataDir);
    // Before anything in the directory is read or opened: a second server on it exits here (code 1).
    dataDirLock = await lockDataDir(dataDir);
    const adminKey = await resolveAdminKey(config.adminKey, dataDir, config.instanceName);
    const location = persistenceLocation(config.database, dataDir);
    const database = await openStorage(location);
    // The URLs functions see (CONVEX_CLOUD_URL / CONVEX_SITE_URL); with --port 0 the real ports are filled in once
    // the listeners are up, before any request can reach a function.
    const urls = { cloudUrl: originFor(config.host, config.apiPort), siteUrl: originFor(config.host, config.sitePort) };
    // Actions never reach the server's own ports; with --port 0 they are known (and action runners start) once bound.
    const serverPorts = Promise.withResolvers<number[]>();
    if (config.apiPort !== 0 && config.sitePort !== 0) serverPorts.resolve([config.apiPort, config.sitePort]);
    let backend: Backend;
    try {
      backend = await openBackend({
        database,
        location,
        dataDir,
        adminKey: adminKey.key,
        instanceName: config.instanceName,
        urls,
        s3: config.s3,
        actionNet: { allowHosts: config.actionAllowHosts, serverPorts: serverPorts.promise },
        backup: config.backup,
        nodePackages: config.nodePackages,
        actionTimeoutMs: config.actionTimeoutMs,
        pinRunners: config.pinRunners,
        searchMemoryBytes: config.searchMemoryBytes,
        log,
      });
    } catch (error) {
      await database.close();
      throw error;
    }

    const sync = new SyncHub(backend);
    // New code or environment variables change query results without a commit.
    backend.deployments.onChange(() => sync.invalidateAll());
    // An import's progress is not a commit: the CLI's `queryImport` subscription re-runs on each change.
    backend.snapshots.imports.onChange(() => sync.invalidateAll());
    const listeners: Listener[] = [];
    try {
      const deps: HttpDeps = {
        version: VERSION_TEXT,
        instanceName: config.instanceName,
        adminKey: adminKey.key,
        backend,
        sync,
      };
      const apiApp = createApiApp(deps);
      apiApp.route("/dashboard", dashboardApp(backend, { version: VERSION_TEXT }));
      const metricsAdminKey = metricsEndpointEnabled() ? adminKey.key : null;
      listeners.push(listen(apiApp, config.host, config.apiPort, "API", { origin: "api", log, metricsAdminKey }));
      listeners.push(
        listen(createSiteApp(deps), config.host, config.sitePort, "HTTP actions", {
          origin: "site",
          log,
          metricsAdminKey: null,
        }),
      );
    } catch (error) {
      await Promise.all(listeners.map((listener) => listener.shutdown()));
      await sync.close();
      await backend.close();
      await database.close();
      throw error;
    }
    const [api, site] = listeners;
    serverPorts.resolve([api.port, site.port]);
    urls.cloudUrl = originFor(config.host, api.port);
    urls.siteUrl = originFor(config.host, site.port);
    printBanner({
      config,
      dataDir,
      storage: describeLocation(location),
      files: backend.storage.blobs.description,
      adminKey,
      apiPort: api.port,
      sitePort: site.port,
    }, log);
    const unregisterGauges = registerServerGauges(backend, sync, location);

    const signal = await stop.received;
    unregisterGauges();
    console.log(`denvex: ${signal} received, shutting down`);
    // Open WebSockets would otherwise hold the listeners' shutdown open.
    await sync.close();
    const drained = await withinMs(Promise.all(listeners.map((listener) => listener.shutdown())), SHUTDOWN_GRACE_MS);
    if (!drained) console.error(`denvex: requests still open after ${SHUTDOWN_GRACE_MS} ms; closing anyway`);
    // The scheduler and the runner processes stop before the database they write to closes.
    if (!await withinMs(backend.close(), DATABASE_CLOSE_TIMEOUT_MS)) {
      console.error(`denvex: the function runtime did not stop within ${DATABASE_CLOSE_TIMEOUT_MS} ms`);
    }
    if (!await withinMs(database.close(), DATABASE_CLOSE_TIMEOUT_MS)) {
      console.error(`denvex: the database did not close within ${DATABASE_CLOSE_TIMEOUT_MS} ms`);
      return 1;
    }
    console.log("denvex: stopped");
    return 0;
  } finally {
    dataDirLock?.release();
    log.dispose();
    stopCrashing();
    stop.dispose();
  }
}

/**
 * A rejected promise nobody awaited, or an exception thrown from a timer callback, would end the process by default:
 * one bug in one request path would take every client's connection down. The server logs them and keeps serving.
 * Returns the function that restores the default.
 */
function keepRunningOnStrayErrors(): () => void {
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    console.error("denvex: unhandled promise rejection:", event.reason);
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    console.error("denvex: uncaught exception:", event.error ?? event.message);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}

/** `admin-key`: prints the key stored in `dataDir`; exit code 1 if there is none. */
export async function printStoredAdminKey(dataDirFlag: string): Promise<number> {
  const dataDir = resolveDataDir(dataDirFlag);
  assertDataDirAccess(dataDir, ["read"]);
  const key = await readStoredAdminKey(dataDir);
  if (key === null) {
    console.error(`denvex: no admin key stored at ${adminKeyPath(dataDir)}; start the server once to generate one`);
    return 1;
  }
  console.log(key);
  return 0;
}

interface BannerFacts {
  config: ServeConfig;
  dataDir: string;
  storage: string;
  /** Where file storage blobs live. */
  files: string;
  adminKey: ResolvedAdminKey;
  apiPort: number;
  sitePort: number;
}

function printBanner(facts: BannerFacts, log: ServerLog): void {
  const { config, dataDir, storage, files, adminKey, apiPort, sitePort } = facts;
  // 0.0.0.0 / :: are not addresses a client can use; show loopback, which always reaches a wildcard listener.
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "[::1]" : urlHost(config.host);
  if (log.format === "json") {
    log.event("info", "server started", {
      version: VERSION_TEXT,
      instance: config.instanceName,
      dataDir,
      database: storage,
      files,
      apiUrl: `http://${host}:${apiPort}`,
      siteUrl: `http://${host}:${sitePort}`,
      listen: config.host,
      ...(config.host === "0.0.0.0" || config.host === "::"
        ? { warning: "the API is reachable from other machines; use --host 127.0.0.1 to keep it local" }
        : {}),
      // Where the key is, never the key.
      adminKey: adminKey.source === "env"
        ? "env DENVEX_ADMIN_KEY"
        : adminKey.source === "file"
        ? `file ${config.adminKey?.source === "file" ? config.adminKey.path : ""}`
        : adminKeyPath(dataDir),
    });
    return;
  }
  const lines = [
    `${VERSION_TEXT} (instance ${config.instanceName})`,
    `  data:         ${dataDir}`,
    `  database:     ${storage}`,
    `  files:        ${files}`,
    `  API:          http://${host}:${apiPort}`,
    `  HTTP actions: http://${host}:${sitePort} (also http://${host}:${apiPort}/http/)`,
    ...listenLines(config.host),
  ];
  switch (adminKey.source) {
    case "generated":
      // Never the key itself: server output ends up in logs. The file is owner-only.
      lines.push(
        `  admin key:    generated and stored in ${adminKeyPath(dataDir)} (print it with: ${adminKeyHint(dataDir)})`,
      );
      break;
    case "stored":
      lines.push(`  admin key:    stored in ${adminKeyPath(dataDir)} (print it with: ${adminKeyHint(dataDir)})`);
      break;
    case "file":
      lines.push(
        `  admin key:    from --admin-key-file ${config.adminKey?.source === "file" ? config.adminKey.path : ""}`,
      );
      break;
    case "env":
      lines.push("  admin key:    from DENVEX_ADMIN_KEY");
      break;
  }
  console.log(lines.join("\n"));
}

/**
 * A command that prints the stored key wherever the server runs: no `deno` on PATH needed (npx users, containers), and
 * the data directory in use, whichever it is.
 */
function adminKeyHint(dataDir: string): string {
  const path = adminKeyPath(dataDir);
  return /^[\w./@:+-]+$/.test(path) ? `cat ${path}` : `cat '${path.replaceAll("'", "'\\''")}'`;
}

/** The address really bound; a wildcard gets a warning, since the admin API and sync are then open to the network. */
function listenLines(host: string): string[] {
  const wildcard = host === "0.0.0.0" || host === "::";
  if (!wildcard) return [`  listening on: ${urlHost(host)}`];
  return [
    `  listening on: ${urlHost(host)} (all interfaces)`,
    "  warning:      the API is reachable from other machines; use --host 127.0.0.1 to keep it local",
  ];
}

/** The origin clients use for a listener (wildcard addresses become loopback). */
function originFor(host: string, port: number): string {
  const clientHost = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : urlHost(host);
  return `http://${clientHost}:${port}`;
}

function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** Resolves true if `promise` settles within `ms`, false otherwise (it keeps running either way). */
async function withinMs(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
