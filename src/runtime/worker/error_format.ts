/**
 * Turning what user code threw into the `errorMessage` / `errorData` of a result (convex-compat.md §4.3).
 */
import { posix } from "node:path";
import { fileURLToPath } from "node:url";
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

/**
 * Formats an error that escaped a function as Convex does: `Uncaught <Name>: <message>` with the error's own class
 * name (a ConvexError subclass keeps its name) and data, or with the stack frames of the developer's code.
 */
export function formatUncaught(error: unknown, deploymentUrl: string): FormattedError {
  if (isConvexError(error)) {
    const name = (error as { name?: unknown }).name;
    const shownName = typeof name === "string" && name !== "" ? name : "ConvexError";
    return { errorMessage: `Uncaught ${shownName}: ${error.message}`, errorData: convexErrorData(error) };
  }
  if (error instanceof Error) {
    const frames = userStackFrames(error.stack ?? "", deploymentUrl);
    const head = `Uncaught ${error.name}: ${stripDeploymentUrl(error.message, deploymentUrl)}`;
    // A nested call's failure brings its own frames in its message: Convex leaves a blank line before the caller's.
    const separator = /\n\s+at /.test(head) ? "\n\n" : "\n";
    return { errorMessage: frames.length === 0 ? head : `${head}${separator}${frames.join("\n")}` };
  }
  return { errorMessage: `Uncaught ${inspect(error)}` };
}

/** Our own runtime's folder (`src/`): its frames (the worker, the syscall bridge) are never the developer's. */
const RUNTIME_SOURCE_URL = new URL("../../", import.meta.url).href;
/** The convex package's own wrappers (`invokeQuery`, `invokeFunction`, …), bundled or mapped back to its sources. */
const CONVEX_PACKAGE_PATH = /\/node_modules\/(?:\.deno\/convex@[^/]+\/node_modules\/)?convex\//;

/**
 * The stack lines of the developer's code, as Convex shows them: `at handler (../convex/messages.ts:12:5)`. Deno maps
 * positions through the source maps the CLI pushes by itself (a mapped frame names the original source resolved
 * against the bundle's folder, outside the deployment folder); frames still in a bundle are mapped here. Paths are
 * shown relative to the deployment folder. Frames of our runtime and of the convex package's wrappers are dropped.
 */
function userStackFrames(stack: string, deploymentUrl: string): string[] {
  const frames: string[] = [];
  for (const line of stack.split("\n")) {
    if (frames.length >= MAX_STACK_FRAMES) break;
    if (!/^\s+at /.test(line) || !line.includes("file://")) continue;
    let foreign = false;
    const mapped = line.trim().replace(POSITION, (position, url: string, row: string, column: string) => {
      const shown = shownPosition(url, Number(row), Number(column), deploymentUrl);
      if (shown === null) foreign = true;
      return shown ?? position;
    });
    if (!foreign) frames.push("    " + mapped);
  }
  return frames;
}

/** How a frame's position is shown, or null for a frame that is not the developer's code. */
function shownPosition(url: string, row: number, column: number, deploymentUrl: string): string | null {
  if (url.startsWith(RUNTIME_SOURCE_URL) || CONVEX_PACKAGE_PATH.test(url)) return null;
  if (url.startsWith(deploymentUrl)) {
    const original = originalPosition(url, row, column);
    if (original !== null) return CONVEX_PACKAGE_PATH.test("/" + original) ? null : original;
    return `${url.slice(deploymentUrl.length)}:${row}:${column}`;
  }
  // Mapped by Deno: the original source, relative to the deployment folder like the source map names it.
  try {
    const relative = posix.relative(fileURLToPath(deploymentUrl), fileURLToPath(url));
    return `${relative}:${row}:${column}`;
  } catch {
    return null;
  }
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
