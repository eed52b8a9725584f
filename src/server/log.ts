/**
 * The server's log format. `text` (the default) is what the server always printed. `json` (`--log-format json`) makes
 * every line the process prints one JSON object, `{"ts", "level", "msg", ...fields}`: the console methods are
 * replaced for the life of the server, so messages from every subsystem come out as JSON too, and function executions
 * and HTTP requests get a line each, with the request ID a failed call's error message carries (`[Request ID: …]`;
 * /work/briefs/request_id_contract.md).
 *
 * No secret reaches a line: fields are chosen here, never whole requests or configurations.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */

/** How the server writes its log. */
export type LogFormat = "text" | "json";

type Level = "debug" | "info" | "warn" | "error";

/** Longest message kept in a JSON line (a huge error message must not become a huge line). */
const MAX_MESSAGE_CHARS = 16 * 1024;

/** Structured events; in text mode only those that were always printed appear. */
export interface ServerLog {
  readonly format: LogFormat;
  /** A JSON line in json mode; nothing in text mode. */
  event(level: Level, msg: string, fields: Record<string, unknown>): void;
  /** Restores the console (json mode replaced it). */
  dispose(): void;
}

/** The log for `format`; json mode takes over `console.log/info/warn/error/debug` until `dispose()`. */
export function openServerLog(format: LogFormat): ServerLog {
  if (format === "text") return { format, event: () => {}, dispose: () => {} };
  const saved = {
    log: console.log,
    info: console.info,
    warn: console.warn,
    error: console.error,
    debug: console.debug,
  };
  const encoder = new TextEncoder();
  const write = (line: string) => {
    try {
      Deno.stdout.writeSync(encoder.encode(`${line}\n`));
    } catch { /* stdout closed: nothing to log to */ }
  };
  const event = (level: Level, msg: string, fields: Record<string, unknown> = {}) =>
    write(jsonLine(level, msg, fields));
  const consoleAs = (level: Level) => (...args: unknown[]) => event(level, consoleText(args), {});
  console.log = consoleAs("info");
  console.info = consoleAs("info");
  console.warn = consoleAs("warn");
  console.error = consoleAs("error");
  console.debug = consoleAs("debug");
  return {
    format,
    event,
    dispose: () => Object.assign(console, saved),
  };
}

/** One line: `ts`, `level` and `msg` first, then `fields` (bigints as strings). */
export function jsonLine(level: Level, msg: string, fields: Record<string, unknown>): string {
  const record = { ts: new Date().toISOString(), level, msg: cut(msg), ...fields };
  return JSON.stringify(record, (_key, value) => typeof value === "bigint" ? value.toString() : value);
}

/** What `console.log(...args)` would print, minus the `denvex: ` prefix text lines carry. */
function consoleText(args: unknown[]): string {
  const text = args.map((arg) => typeof arg === "string" ? arg : Deno.inspect(arg, { colors: false })).join(" ");
  return text.startsWith("denvex: ") ? text.slice("denvex: ".length) : text;
}

function cut(text: string): string {
  return text.length <= MAX_MESSAGE_CHARS ? text : `${text.slice(0, MAX_MESSAGE_CHARS)}… (${text.length} chars)`;
}
