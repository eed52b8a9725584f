/**
 * Turning what user code threw into the `errorMessage` / `errorData` of a result (convex-compat.md §4.3).
 */
import type { JsonValue } from "../../values/mod.ts";
import { stripDeploymentUrl } from "./functions.ts";
import { inspect } from "./inspect.ts";
import { originalPosition } from "./source_maps.ts";

const CONVEX_ERROR = Symbol.for("ConvexError");
/** `file:///…/x.js:12:5` inside a stack line. */
const POSITION = /(file:\/\/[^\s()]+?):(\d+):(\d+)/g;
/** Most stack frames kept in a message. */
const MAX_STACK_FRAMES = 20;

/** A failure as the result reports it. */
export interface FormattedError {
  errorMessage: string;
  errorData?: JsonValue;
}

/** True for a ConvexError as the runtime rejects with it (data already serialized to a JSON string). */
export function isConvexError(error: unknown): error is { message: string; data: unknown } {
  if (typeof error !== "object" || error === null) return false;
  const record = error as Record<string | symbol, unknown>;
  return CONVEX_ERROR in record || record.ConvexErrorSymbol === CONVEX_ERROR;
}

/** The convex-JSON data of a ConvexError (the runtime stores it as JSON text; tolerate a raw value). */
export function convexErrorData(error: { data: unknown }): JsonValue {
  if (typeof error.data === "string") {
    try {
      return JSON.parse(error.data) as JsonValue;
    } catch {
      return error.data;
    }
  }
  return (error.data ?? null) as JsonValue;
}

/** Formats an error that escaped a function: `Uncaught ConvexError: …` + data, or `Uncaught Error: …` + stack. */
export function formatUncaught(error: unknown, deploymentUrl: string): FormattedError {
  if (isConvexError(error)) {
    return { errorMessage: `Uncaught ConvexError: ${error.message}`, errorData: convexErrorData(error) };
  }
  if (error instanceof Error) {
    const frames = userStackFrames(error.stack ?? "", deploymentUrl);
    const head = `Uncaught ${error.name}: ${stripDeploymentUrl(error.message, deploymentUrl)}`;
    return { errorMessage: frames.length === 0 ? head : `${head}\n${frames.join("\n")}` };
  }
  return { errorMessage: `Uncaught ${inspect(error)}` };
}

/**
 * Stack lines that point into the deployment's modules, mapped to the developer's sources when the push carried
 * source maps. Frames of bundled libraries (`node_modules`, e.g. convex/server's own invoke wrappers) are dropped.
 */
function userStackFrames(stack: string, deploymentUrl: string): string[] {
  const frames: string[] = [];
  for (const line of stack.split("\n")) {
    if (frames.length >= MAX_STACK_FRAMES) break;
    if (!/^\s+at /.test(line) || !line.includes(deploymentUrl)) continue;
    let library = false;
    const mapped = line.trim().replace(POSITION, (position, url: string, row: string, column: string) => {
      if (!url.startsWith(deploymentUrl)) return position;
      const original = originalPosition(url, Number(row), Number(column));
      if (original?.includes("node_modules/")) library = true;
      return original ?? `${url.slice(deploymentUrl.length)}:${row}:${column}`;
    });
    if (!library) frames.push("    " + mapped);
  }
  return frames;
}

/**
 * What an async syscall rejects with so the runtime rethrows the right thing: an Error whose `data` (convex-JSON) is
 * set only for ConvexErrors (convex-compat.md §4.1).
 */
export function syscallFailure(message: string, data?: JsonValue): Error {
  const error = new Error(message);
  if (data !== undefined) (error as Error & { data?: JsonValue }).data = data;
  return error;
}
