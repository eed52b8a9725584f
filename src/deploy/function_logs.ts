/** Executions in the `FunctionExecution` shape of `GET /api/stream_function_logs` (convex-compat.md §5.4). */
import type { LoggedExecution } from "../functions/mod.ts";

/** Longest long poll of the log stream. */
export const MAX_LOG_POLL_MS = 30_000;
/** Most entries in one response (a client far behind catches up over several polls). */
export const MAX_LOG_ENTRIES = 1_000;

const UDF_TYPES = { query: "Query", mutation: "Mutation", action: "Action" } as const;
const LEVELS = new Set(["LOG", "INFO", "WARN", "ERROR", "DEBUG"]);

/** Splits `[LEVEL] text` into its level and message (lines without a prefix are LOG). */
function logLine(line: string, timestampMs: number) {
  const match = /^\[([A-Z]+)\] ([\s\S]*)$/.exec(line);
  const level = match && LEVELS.has(match[1]) ? match[1] : "LOG";
  const message = match && LEVELS.has(match[1]) ? match[2] : line;
  return { messages: [message], level, timestamp: timestampMs, isTruncated: false };
}

/** One logged execution as the CLI expects it. */
export function functionExecution(entry: LoggedExecution): Record<string, unknown> {
  return {
    kind: "Completion",
    udfType: UDF_TYPES[entry.udfType],
    identifier: `${entry.modulePath}:${entry.exportName}`,
    // The dashboard and `npx convex logs --jsonl` group by it; null is the app, as Convex sends.
    componentPath: entry.componentPath ? entry.componentPath : null,
    logLines: entry.logLines.map((line) => logLine(line, entry.startedAtMs)),
    timestamp: entry.startedAtMs / 1000,
    executionTime: entry.executionTimeMs / 1000,
    cachedResult: false,
    caller: "",
    success: null,
    error: entry.ok ? null : entry.errorMessage ?? "Unknown error",
    requestId: entry.requestId,
    executionId: entry.requestId,
    usageStats: {
      databaseReadBytes: 0,
      databaseWriteBytes: 0,
      storageReadBytes: 0,
      storageWriteBytes: 0,
      vectorIndexReadBytes: 0,
      vectorIndexWriteBytes: 0,
      memoryUsedMb: 0,
    },
    willRetry: false,
    executionTimestamp: entry.startedAtMs / 1000,
    identityType: "unknown",
    environment: "isolate",
  };
}
