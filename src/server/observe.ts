/**
 * What operators see of a running server: `GET /metrics` (Prometheus text, admin key required, off with env
 * DISABLE_METRICS_ENDPOINT), request counts and latencies per endpoint, function executions, and the gauges read from
 * the subsystems when scraped (runner pools, sockets, subscriptions, scheduler, database size, retention, memory).
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import { constantTimeEqual } from "../auth/mod.ts";
import { pathnameOf } from "../http/mod.ts";
import {
  functionExecutions,
  functionExecutionSeconds,
  type GaugeSample,
  httpRequests,
  httpRequestSeconds,
  METRICS,
} from "../metrics/mod.ts";
import type { PersistenceLocation } from "../persistence/mod.ts";
import type { ServerLog } from "./log.ts";

/** The path of the scrape endpoint on the API port. */
export const METRICS_PATH = "/metrics";
/** Env switch (Convex self-hosted's name): `true` or `1` turns `/metrics` off (it answers 404). */
export const DISABLE_METRICS_ENV = "DISABLE_METRICS_ENDPOINT";

/** A `fetch` handler, as `Deno.serve` takes it. */
export type FetchHandler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** What the HTTP instrumentation needs. */
export interface ObserveOptions {
  origin: "api" | "site";
  log: ServerLog;
  /** Serves `/metrics` with this key as its guard; null: no metrics endpoint on this origin. */
  metricsAdminKey: string | null;
}

/** Wraps `handler`: counts and times every request, logs it in json mode, and answers `/metrics` on the API port. */
export function observeRequests(handler: FetchHandler, options: ObserveOptions): FetchHandler {
  const endpoints = new EndpointCache(options.origin);
  return async (request, info) => {
    const startedMs = performance.now();
    const pathname = pathnameOf(request.url);
    const endpoint = endpoints.of(pathname);
    let response: Response;
    try {
      response = options.metricsAdminKey !== null && pathname === METRICS_PATH
        ? scrape(request, options.metricsAdminKey)
        : await handler(request, info);
    } catch (error) {
      record(options, request.method, endpoint, 500, startedMs, pathname);
      throw error;
    }
    record(options, request.method, endpoint, response.status, startedMs, pathname);
    return response;
  };
}

/** Endpoint labels of recent paths: the label is a function of the path, computed once per distinct path. */
class EndpointCache {
  static readonly MAX_PATHS = 1_024;
  /** Longest path remembered: paths come from clients, so the cache is bounded in bytes too (1,024 × 256 chars). */
  static readonly MAX_PATH_CHARS = 256;
  readonly #origin: "api" | "site";
  readonly #labels = new Map<string, string>();

  constructor(origin: "api" | "site") {
    this.#origin = origin;
  }

  of(pathname: string): string {
    let label = this.#labels.get(pathname);
    if (label !== undefined) return label;
    label = endpointOf(this.#origin, pathname);
    // IDs in paths make them unbounded; a full cache starts over (a label costs ~1 µs to compute again).
    if (pathname.length > EndpointCache.MAX_PATH_CHARS) return label;
    if (this.#labels.size >= EndpointCache.MAX_PATHS) this.#labels.clear();
    this.#labels.set(pathname, label);
    return label;
  }
}

function record(
  options: ObserveOptions,
  method: string,
  endpoint: string,
  status: number,
  startedMs: number,
  path: string,
): void {
  const seconds = (performance.now() - startedMs) / 1000;
  httpRequests.inc({
    origin: options.origin,
    endpoint,
    method: methodLabel(method),
    status: `${Math.floor(status / 100)}xx`,
  });
  httpRequestSeconds.observe(seconds, { origin: options.origin, endpoint });
  if (options.log.format === "json") {
    options.log.event(status >= 500 ? "error" : "info", "http request", {
      origin: options.origin,
      method: methodLabel(method),
      // The path only: query strings can carry tokens.
      path: path.slice(0, 256),
      status,
      durationMs: Math.round(seconds * 1e6) / 1e3,
    });
  }
}

/** `GET /metrics`: the registry as Prometheus text, for the admin key (as `Bearer <key>` or `Convex <key>`). */
function scrape(request: Request, adminKey: string): Response {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return Response.json({ code: "MethodNotAllowed", message: "GET /metrics" }, { status: 405 });
  }
  const header = request.headers.get("authorization") ?? "";
  const key = /^(?:Bearer|Convex)\s+(\S+)$/.exec(header.trim())?.[1];
  if (key === undefined) {
    return Response.json(
      { code: "MissingAdminKey", message: "GET /metrics needs the admin key: Authorization: Bearer <admin key>" },
      { status: 401, headers: { "www-authenticate": "Bearer" } },
    );
  }
  if (!constantTimeEqual(key, adminKey)) {
    return Response.json({ code: "BadAdminKey", message: "The admin key is not valid" }, { status: 403 });
  }
  return new Response(METRICS.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
}

/** True unless env DISABLE_METRICS_ENDPOINT is `true`/`1` (read only when granted). */
export function metricsEndpointEnabled(): boolean {
  let value: string | undefined;
  try {
    value = Deno.env.get(DISABLE_METRICS_ENV);
  } catch {
    return true; // no grant for it: nobody can have set it for this process
  }
  return !(value === "1" || value?.toLowerCase() === "true");
}

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : "other";
}

/**
 * A bounded label for a path: HTTP actions (user-chosen paths) are one endpoint; on the API, at most three segments,
 * with version numbers and IDs folded (`/api/1.48.0/sync` → `/api/:version/sync`, `/api/storage/<id>` → `…/:id`).
 */
export function endpointOf(origin: "api" | "site", path: string): string {
  if (origin === "site" || path === "/http" || path.startsWith("/http/")) return "http_action";
  const segments = path.split("/").filter((segment) => segment !== "").slice(0, 3);
  if (segments[0] === "dashboard") return "/dashboard";
  const folded = segments.map((segment) => {
    if (/^\d+(\.\d+)*$/.test(segment)) return ":version";
    if (segment.length > 24 || /\d{4,}/.test(segment)) return ":id";
    return segment;
  });
  return `/${folded.join("/")}`;
}

/** Counts and times a finished execution (the executor's `onExecution` hook) and logs it in json mode. */
export function observeExecution(
  log: ServerLog,
  record: {
    udfType: string;
    ok: boolean;
    executionTimeMs: number;
    requestId: string;
    displayName: string;
    componentPath?: string | undefined;
    errorMessage?: string | undefined;
  },
): void {
  functionExecutions.inc({ udf_type: record.udfType, outcome: record.ok ? "ok" : "error" });
  functionExecutionSeconds.observe(record.executionTimeMs / 1000, { udf_type: record.udfType });
  if (log.format !== "json") return;
  log.event(record.ok ? "info" : "error", "function executed", {
    requestId: record.requestId,
    udfType: record.udfType,
    function: record.displayName,
    ...(record.componentPath ? { componentPath: record.componentPath } : {}),
    ok: record.ok,
    executionTimeMs: record.executionTimeMs,
    ...(record.ok ? {} : { error: record.errorMessage ?? "" }),
  });
}

/** What the gauges read (the server's `Backend`, seen structurally: backend.ts imports this file). */
export interface ObservedBackend {
  pool: { stats(): Record<string, { runners: number; idle: number; starting: number; queued: number }> };
  services: { subscriptions: { readonly size: number } };
  scheduler: { scheduler: { readonly runningCount: number; readonly retryingCount: number } };
  database: {
    readonly latestTs: bigint;
    readonly retainedSinceTs: bigint;
    readonly snapshotHolds: { readonly count: number };
  };
}

/** Gauges read from the running server; returns the function that unregisters them (at shutdown). */
export function registerServerGauges(
  backend: ObservedBackend,
  sync: { readonly socketCount: number },
  location: PersistenceLocation,
): () => void {
  const gauges: [string, string, () => number | readonly GaugeSample[]][] = [
    ["denvex_runners", "Runner processes, by kind and state", () => runnerSamples(backend)],
    [
      "denvex_runner_queue_depth",
      "Calls waiting for a runner, by kind",
      () => Object.entries(backend.pool.stats()).map(([kind, s]) => [{ kind }, s.queued] as const),
    ],
    ["denvex_websocket_sessions", "Open sync WebSocket connections", () => sync.socketCount],
    [
      "denvex_subscriptions",
      "Live query subscriptions (distinct queries shared by clients)",
      () => backend.services.subscriptions.size,
    ],
    [
      "denvex_scheduler_running_jobs",
      "Scheduled functions running now",
      () => backend.scheduler.scheduler.runningCount,
    ],
    [
      "denvex_scheduler_retrying_jobs",
      "Scheduled functions waiting to retry after an infrastructure failure",
      () => backend.scheduler.scheduler.retryingCount,
    ],
    [
      "denvex_retention_window_seconds",
      "Commit history kept: latest commit ts minus the retention watermark",
      () => Number(backend.database.latestTs - backend.database.retainedSinceTs) / 1e9,
    ],
    [
      "denvex_snapshot_holds",
      "Snapshots held from retention (exports, backups)",
      () => backend.database.snapshotHolds.count,
    ],
    [
      "denvex_database_size_bytes",
      "Size of the SQLite database file and its WAL (SQLite only)",
      () => sqliteBytes(location),
    ],
    ["denvex_process_memory_bytes", "Memory of the server process (rss, heap_used, heap_total, external)", () => {
      const usage = Deno.memoryUsage();
      return [
        [{ kind: "rss" }, usage.rss],
        [{ kind: "heap_used" }, usage.heapUsed],
        [{ kind: "heap_total" }, usage.heapTotal],
        [{ kind: "external" }, usage.external],
      ];
    }],
  ];
  for (const [name, help, collect] of gauges) METRICS.gauge(name, help, collect);
  return () => gauges.forEach(([name]) => METRICS.remove(name));
}

function runnerSamples(backend: ObservedBackend): GaugeSample[] {
  return Object.entries(backend.pool.stats()).flatMap(([kind, s]) => [
    [{ kind, state: "idle" }, s.idle] as const,
    [{ kind, state: "busy" }, Math.max(0, s.runners - s.idle - s.starting)] as const,
    [{ kind, state: "starting" }, s.starting] as const,
  ]);
}

function sqliteBytes(location: PersistenceLocation): readonly GaugeSample[] {
  if (location.kind !== "sqlite") return [];
  const sizeOf = (path: string) => {
    try {
      return Deno.statSync(path).size;
    } catch {
      return 0;
    }
  };
  return [[{ file: "main" }, sizeOf(location.path)], [{ file: "wal" }, sizeOf(`${location.path}-wal`)]];
}
