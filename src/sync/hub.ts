/**
 * The sync hub: owns every WebSocket of `GET /api/<version>/sync`, flushes them when query results advance, pings
 * idle ones every 15 s, and tells clients when their token expires.
 */
import { ByteBudget } from "./byte_budget.ts";
import { HeapRelease } from "./heap_release.ts";
import { MutationLog, type MutationReply } from "./mutation_log.ts";
import type { FunctionServices } from "./services.ts";
import { SyncSession } from "./session.ts";
import type { SyncBackend } from "./types.ts";

/** Silence after which a `Ping` message is sent (the client gives up after 60 s). */
export const PING_AFTER_SILENCE_MS = 15_000;
/** How often idle sockets and token expiry are checked. */
const TICK_MS = 5_000;
/** Sockets accepted at once; beyond it upgrades are refused with 503. */
export const MAX_SOCKETS = 100_000;
/**
 * Bytes of received sync messages not yet done (queued or running) across all sockets: a socket whose message
 * does not fit is closed (its client reconnects), so a crowd of senders cannot queue more than this in total.
 */
export const MAX_PENDING_INBOUND_BYTES = 256 * 1024 * 1024;

/** See the module comment. */
export class SyncHub {
  readonly #backend: SyncBackend;
  readonly #services: FunctionServices;
  readonly #sessions = new Set<SyncSession>();
  readonly #dirty = new Set<SyncSession>();
  readonly #waiting = new Set<SyncSession>();
  readonly #mutationLog = new MutationLog<MutationReply>();
  readonly #inboundBudget = new ByteBudget(MAX_PENDING_INBOUND_BYTES);
  readonly #heapRelease = new HeapRelease();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #onAdvance: () => void;
  #closed = false;

  constructor(backend: SyncBackend) {
    this.#backend = backend;
    this.#services = backend.services;
    this.#onAdvance = () => this.#flushOwed();
    this.#services.advanceListeners.add(this.#onAdvance);
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    Deno.unrefTimer(this.#timer);
  }

  /** Number of open sockets. */
  get socketCount(): number {
    return this.#sessions.size;
  }

  /**
   * Upgrades a sync request (from the peer address `remoteIp`) to a WebSocket; anything else is a 400 JSON error.
   */
  handle(request: Request, remoteIp: string | null = null): Response {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ code: "BadRequest", message: "The sync endpoint expects a WebSocket upgrade" }, {
        status: 400,
      });
    }
    if (this.#closed) {
      return Response.json({ code: "ShuttingDown", message: "The server is stopping" }, { status: 503 });
    }
    if (this.#sessions.size >= MAX_SOCKETS) {
      return Response.json({ code: "TooManyConnections", message: "Too many open sync connections" }, { status: 503 });
    }
    // Read before the upgrade: the request's headers are gone after it.
    const client = { ip: remoteIp, userAgent: request.headers.get("User-Agent") };
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(request, { idleTimeout: 30 });
    } catch (error) {
      // A malformed handshake (no Sec-WebSocket-Key, no `Connection: Upgrade`, another version) is the client's
      // mistake: Deno throws a TypeError naming the header at fault.
      const message = error instanceof Error ? error.message : "Malformed WebSocket handshake";
      return Response.json({ code: "BadWebSocketHandshake", message }, { status: 400 });
    }
    const { socket, response } = upgraded;
    const session = new SyncSession(socket, {
      client,
      backend: this.#backend,
      services: this.#services,
      mutationLog: this.#mutationLog,
      inboundBudget: this.#inboundBudget,
      onDirty: (s) => this.#dirty.add(s),
      onWaiting: (s, waiting) => waiting ? this.#waiting.add(s) : this.#waiting.delete(s),
      onClosed: (s, releasedQueries) => {
        this.#heapRelease.noteReleased(releasedQueries, Date.now());
        this.#sessions.delete(s);
        this.#dirty.delete(s);
        this.#waiting.delete(s);
      },
    });
    this.#sessions.add(session);
    return response;
  }

  /** Re-runs every live query (after a deploy changed the code or the auth config). */
  invalidateAll(): void {
    this.#services.subscriptions.invalidateAll();
  }

  /** Closes every socket (1001 going away: clients reconnect to the next server) and stops the timers. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearInterval(this.#timer);
    this.#services.advanceListeners.delete(this.#onAdvance);
    for (const session of [...this.#sessions]) session.close(1001, "ServerShuttingDown");
    // The services belong to the backend, which closes them.
    return Promise.resolve();
  }

  #flushOwed(): void {
    const owed = [...this.#dirty, ...this.#waiting];
    this.#dirty.clear();
    for (const session of owed) session.flush();
  }

  #tick(): void {
    const nowMs = Date.now();
    this.#heapRelease.maybeCollect(nowMs);
    for (const session of this.#sessions) {
      const expiresAtMs = session.tokenExpiresAtMs;
      if (expiresAtMs !== null && expiresAtMs < nowMs) session.tokenExpired();
      else if (nowMs - session.lastSentMs >= PING_AFTER_SILENCE_MS) session.ping();
    }
  }
}
