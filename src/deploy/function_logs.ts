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

/**
 * One logged execution as the CLI expects it: the lines nested calls into other components wrote come first as
 * `Progress` entries under those functions and their component paths (Convex attributes a sub-function's lines to it),
 * then the `Completion` with the function's own last lines.
 */
export function functionLogEntries(entry: LoggedExecution): Record<string, unknown>[] {
  const sources = entry.logSources ?? [];
  if (sources.length === 0) return [functionExecution(entry)];
  const own = { componentPath: entry.componentPath ?? "", udfPath: `${entry.modulePath}:${entry.exportName}` };
  const runs = [{ fromLine: 0, ...own }, ...sources];
  const entries: Record<string, unknown>[] = [];
  let lastOwnLines: string[] = [];
  runs.forEach((run, i) => {
    const lines = entry.logLines.slice(run.fromLine, runs[i + 1]?.fromLine ?? entry.logLines.length);
    const isOwn = run.componentPath === own.componentPath && run.udfPath === own.udfPath;
    if (i === runs.length - 1 && isOwn) lastOwnLines = lines;
    else if (lines.length > 0) entries.push(progressEntry(entry, run.componentPath, run.udfPath, lines));
  });
  entries.push(functionExecution({ ...entry, logLines: lastOwnLines }));
  return entries;
}

/** Log lines written during an execution by one function of it (Convex's `Progress` entries). */
function progressEntry(
  entry: LoggedExecution,
  componentPath: string,
  udfPath: string,
  lines: string[],
): Record<string, unknown> {
  return {
    kind: "Progress",
    udfType: UDF_TYPES[entry.udfType],
    identifier: udfPath,
    componentPath: componentPath === "" ? null : componentPath,
    logLines: lines.map((line) => logLine(line, entry.startedAtMs)),
    timestamp: entry.startedAtMs / 1000,
    requestId: entry.requestId,
    executionId: entry.requestId,
  };
}

/** One logged execution as the CLI expects it, all its lines under the called function. */
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
