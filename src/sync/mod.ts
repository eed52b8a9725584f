/**
 * WebSocket sync (convex-compat.md §2): `GET /api/<version>/sync` and `/api/sync`. The hub owns every socket, flushes
 * them when query results advance, pings idle ones every 15 s, and tells clients when their token expires.
 *
 * @module
 */
export { MutationLog } from "./mutation_log.ts";
export { parseClientMessage, ProtocolError } from "./protocol.ts";
export { ByteBudget } from "./byte_budget.ts";
export { createFunctionServices, type FunctionServices, type FunctionServicesDeps, toQueryRun } from "./services.ts";
export type { SyncBackend } from "./types.ts";
export { MAX_MESSAGE_BYTES, SyncSession } from "./session.ts";
export { MAX_PENDING_INBOUND_BYTES, MAX_SOCKETS, PING_AFTER_SILENCE_MS, SyncHub } from "./hub.ts";
