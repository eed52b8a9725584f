/**
 * Messages of the sync protocol (convex-compat.md §2.2, §2.3): parsing and validation of what clients send, and the
 * shapes of what the server sends. A message that fails validation is a protocol violation (`ProtocolError`).
 */
import { DenvexError } from "../errors/mod.ts";
import { jsonNestingExceeds, MAX_JSON_ARGS_NESTING, MAX_VALUE_NESTING } from "../values/mod.ts";
import type { JsonValue } from "../values/mod.ts";

/** A client bug: answered with `FatalError` and a closed socket. */
export class ProtocolError extends DenvexError {
  constructor(message: string) {
    super("InvalidSyncMessage", message, { httpStatus: 400 });
    this.name = "ProtocolError";
  }
}

/** One query-set change. */
export type QuerySetModification =
  | {
    type: "Add";
    queryId: number;
    udfPath: string;
    args: JsonValue;
    journal: string | null;
    /** `""` for the app; a component's path runs its query (admin only). */
    componentPath: string;
  }
  | { type: "Remove"; queryId: number };

/** The client messages the server acts on. */
export type ClientMessage =
  | {
    type: "Connect";
    sessionId: string;
    connectionCount: number;
    clientTs: number | null;
    maxObservedTimestamp: string | null;
  }
  | { type: "ModifyQuerySet"; baseVersion: number; newVersion: number; modifications: QuerySetModification[] }
  | { type: "Mutation" | "Action"; requestId: number; udfPath: string; args: JsonValue; componentPath: string }
  | {
    type: "Authenticate";
    baseVersion: number;
    tokenType: "User" | "Admin" | "None";
    value: string | null;
    impersonating: unknown;
  }
  | { type: "Event" };

/** Server state version (§2.4). */
export interface StateVersion {
  querySet: number;
  identity: number;
  ts: string;
}

/** Most modifications accepted in one `ModifyQuerySet`. */
export const MAX_MODIFICATIONS = 10_000;
/** Longest function path accepted. */
const MAX_PATH_LENGTH = 1024;

function fail(message: string): never {
  throw new ProtocolError(message);
}

function int(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    fail(`${what} must be a non-negative integer`);
  }
  return value;
}

function path(value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_PATH_LENGTH) {
    fail("udfPath must be a non-empty string");
  }
  return value;
}

/** A component path (`"name"`, `"parent/child"`); absent, null and `""` are the app. */
function componentPath(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string" || value.length > MAX_PATH_LENGTH) fail("componentPath must be a string");
  return value;
}

/** `args` is a one-element array holding the args object (an object alone is tolerated). */
function args(value: unknown): JsonValue {
  const inner = Array.isArray(value)
    ? (value.length === 1 ? value[0] : fail("args must hold exactly one object"))
    : value;
  if (inner === null || typeof inner !== "object" || Array.isArray(inner)) fail("args must be [<object>]");
  // Checked without recursion before anything recursive (cache keys, convex-JSON, validators) walks the args.
  if (jsonNestingExceeds(inner, MAX_JSON_ARGS_NESTING)) {
    fail(`args are nested more than ${MAX_VALUE_NESTING} levels deep, the limit of Convex values`);
  }
  return inner as JsonValue;
}

/** Parses one text frame; throws ProtocolError for anything malformed. */
export function parseClientMessage(text: string): ClientMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    fail("Message is not valid JSON");
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail("Message must be a JSON object");
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case "Connect":
      if (typeof m.sessionId !== "string" || m.sessionId.length === 0 || m.sessionId.length > 128) {
        fail("Connect.sessionId must be a string");
      }
      if (m.maxObservedTimestamp !== undefined && m.maxObservedTimestamp !== null) {
        if (typeof m.maxObservedTimestamp !== "string") fail("Connect.maxObservedTimestamp must be a string");
      }
      return {
        type: "Connect",
        sessionId: m.sessionId,
        connectionCount: typeof m.connectionCount === "number" ? m.connectionCount : 0,
        clientTs: typeof m.clientTs === "number" && Number.isFinite(m.clientTs) ? m.clientTs : null,
        maxObservedTimestamp: (m.maxObservedTimestamp as string | undefined) ?? null,
      };
    case "ModifyQuerySet": {
      const baseVersion = int(m.baseVersion, "baseVersion");
      const newVersion = int(m.newVersion, "newVersion");
      if (!Array.isArray(m.modifications)) fail("ModifyQuerySet.modifications must be an array");
      if (m.modifications.length > MAX_MODIFICATIONS) fail(`More than ${MAX_MODIFICATIONS} modifications`);
      const modifications = m.modifications.map((mod): QuerySetModification => {
        if (mod === null || typeof mod !== "object") fail("A modification must be an object");
        const o = mod as Record<string, unknown>;
        if (o.type === "Add") {
          return {
            type: "Add",
            queryId: int(o.queryId, "queryId"),
            udfPath: path(o.udfPath),
            args: args(o.args),
            journal: typeof o.journal === "string" ? o.journal : null,
            componentPath: componentPath(o.componentPath),
          };
        }
        if (o.type === "Remove") return { type: "Remove", queryId: int(o.queryId, "queryId") };
        return fail(`Unknown modification type ${JSON.stringify(o.type)}`);
      });
      return { type: "ModifyQuerySet", baseVersion, newVersion, modifications };
    }
    case "Mutation":
    case "Action":
      return {
        type: m.type,
        requestId: int(m.requestId, "requestId"),
        udfPath: path(m.udfPath),
        args: args(m.args),
        componentPath: componentPath(m.componentPath),
      };
    case "Authenticate": {
      const baseVersion = int(m.baseVersion, "baseVersion");
      if (m.tokenType === "None") {
        return { type: "Authenticate", baseVersion, tokenType: "None", value: null, impersonating: null };
      }
      if (m.tokenType !== "User" && m.tokenType !== "Admin") fail("Authenticate.tokenType must be User, Admin or None");
      if (typeof m.value !== "string") fail("Authenticate.value must be a string");
      return {
        type: "Authenticate",
        baseVersion,
        tokenType: m.tokenType,
        value: m.value,
        impersonating: m.impersonating,
      };
    }
    case "Event":
      return { type: "Event" };
    default:
      return fail(`Unknown message type ${JSON.stringify(m.type)}`);
  }
}
