/**
 * Replaces the worker's `console` with one that records `[LEVEL] message` lines for the execution in progress
 * (convex-compat.md §2.10); they travel back with the result instead of going to the runner's stderr.
 */
import { inspect } from "./inspect.ts";
import type { LogLineSource } from "../types.ts";

/** Most lines kept per execution; the official runtime has the same cap. */
export const MAX_LOG_LINES = 256;
/** Longest line kept, in UTF-16 code units. */
export const MAX_LOG_LINE_CHARS = 32_768;

/** Where the lines of the execution in progress go. */
export class LogSink {
  readonly lines: string[] = [];
  /** `console.count` and `console.time` state: the execution's own, so no call sees another's labels or counts. */
  readonly counts = new Map<string, number>();
  readonly timers = new Map<string, number>();
  /** Runs of lines written by nested calls into other components (see `LogLineSource`). */
  readonly sources: LogLineSource[] = [];
  #overflowed = false;

  /** The lines written from now on come from `udfPath` of `componentPath`. */
  markSource(componentPath: string, udfPath: string): void {
    const fromLine = this.lines.length;
    if (this.sources.at(-1)?.fromLine === fromLine) this.sources.pop(); // that run wrote nothing
    this.sources.push({ fromLine, componentPath, udfPath });
  }

  add(level: string, message: string): void {
    if (this.lines.length >= MAX_LOG_LINES) {
      if (!this.#overflowed) {
        this.#overflowed = true;
        this.lines.push(`[ERROR] Log overflow (maximum ${MAX_LOG_LINES}). Remaining log lines omitted.`);
      }
      return;
    }
    let line = `[${level}] ${message}`;
    if (line.length > MAX_LOG_LINE_CHARS) {
      line = line.slice(0, MAX_LOG_LINE_CHARS) + ` (truncated due to length exceeding ${MAX_LOG_LINE_CHARS} bytes)`;
    }
    this.lines.push(line);
  }
}

let sink: LogSink | null = null;

/** Marks where the lines of the execution in progress come from from now on (`LogSink.markSource`). */
export function markLogSource(componentPath: string, udfPath: string): void {
  sink?.markSource(componentPath, udfPath);
}

/** Sends console output to `next` (null: discard, e.g. between executions). */
export function setLogSink(next: LogSink | null): void {
  sink = next;
}

// Date.now() is frozen in queries and mutations; timers measure real elapsed time.
const nowMs = performance.now.bind(performance);

function message(args: unknown[]): string {
  return args.map((arg) => inspect(arg)).join(" ");
}

function emit(level: string, args: unknown[]): void {
  sink?.add(level, message(args));
}

/** Installs the capturing console on `globalThis`. */
export function installConsole(): void {
  const label = (value: unknown) => (value === undefined ? "default" : String(value));
  const capturing = {
    log: (...args: unknown[]) => emit("LOG", args),
    info: (...args: unknown[]) => emit("INFO", args),
    warn: (...args: unknown[]) => emit("WARN", args),
    error: (...args: unknown[]) => emit("ERROR", args),
    debug: (...args: unknown[]) => emit("DEBUG", args),
    trace: (...args: unknown[]) => {
      const stack = (new Error().stack ?? "").split("\n").slice(2).join("\n");
      emit("ERROR", [...args, "\n" + stack]);
    },
    assert: (condition: unknown, ...args: unknown[]) => {
      if (!condition) emit("ERROR", ["Assertion failed", ...args]);
    },
    // Counts and timers are the execution's (its sink's); outside one (between calls) they, like the lines, go nowhere.
    count: (name?: unknown) => {
      if (sink === null) return;
      const key = label(name);
      const count = (sink.counts.get(key) ?? 0) + 1;
      sink.counts.set(key, count);
      sink.add("INFO", `${key}: ${count}`);
    },
    countReset: (name?: unknown) => sink?.counts.delete(label(name)),
    time: (name?: unknown) => {
      if (sink === null) return;
      const key = label(name);
      if (sink.timers.has(key)) sink.add("WARN", `Timer '${key}' already exists`);
      else sink.timers.set(key, nowMs());
    },
    timeLog: (name?: unknown, ...args: unknown[]) => {
      if (sink === null) return;
      const key = label(name);
      const start = sink.timers.get(key);
      if (start === undefined) sink.add("WARN", `Timer '${key}' does not exist`);
      else sink.add("INFO", [`${key}: ${Math.round(nowMs() - start)}ms`, ...args.map((a) => inspect(a))].join(" "));
    },
    timeEnd: (name?: unknown) => {
      if (sink === null) return;
      const key = label(name);
      const start = sink.timers.get(key);
      if (start === undefined) return sink.add("WARN", `Timer '${key}' does not exist`);
      sink.timers.delete(key);
      sink.add("INFO", `${key}: ${Math.round(nowMs() - start)}ms`);
    },
    table: (...args: unknown[]) => emit("LOG", args),
    dir: (value: unknown) => emit("LOG", [value]),
    dirxml: (...args: unknown[]) => emit("LOG", args),
    group: (...args: unknown[]) => args.length > 0 && emit("LOG", args),
    groupCollapsed: (...args: unknown[]) => args.length > 0 && emit("LOG", args),
    groupEnd: () => {},
    clear: () => {},
  };
  Object.defineProperty(globalThis, "console", { value: capturing, writable: true, configurable: true });
}
