/**
 * Renders console arguments the way the official runtime does (it uses `object-inspect` with `indent: 2`): strings
 * single-quoted, objects one field per line, arrays on one line when their elements are, `3n` for bigints.
 * Written from the observed output format, not from that package.
 */

/** Longest string rendered before truncation (the official runtime keeps a whole line under 32 KiB). */
export const MAX_INSPECT_STRING_CHARS = 32_768;
const MAX_DEPTH = 5;
const MAX_ENTRIES = 1_000;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** Renders one console argument. */
export function inspect(value: unknown): string {
  return render(value, 0, []);
}

function render(value: unknown, depth: number, seen: object[]): string {
  switch (typeof value) {
    case "string":
      return quote(value);
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "boolean":
    case "undefined":
      return String(value);
    case "symbol":
      return value.toString();
    case "function":
      return renderFunction(value as (...args: unknown[]) => unknown);
  }
  if (value === null) return "null";
  const object = value as object;
  if (seen.includes(object)) return "[Circular]";
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? "Invalid Date" : object.toISOString();
  if (object instanceof RegExp) return String(object);
  if (object instanceof Error) return renderError(object, depth, seen);
  if (depth >= MAX_DEPTH) return Array.isArray(object) ? "[Array]" : "[Object]";
  const inner = [...seen, object];
  if (Array.isArray(object)) return renderArray(object, depth, inner);
  if (object instanceof Map) {
    const entries = [...object].slice(0, MAX_ENTRIES).map(([k, v]) =>
      `${render(k, depth + 1, inner)} => ${render(v, depth + 1, inner)}`
    );
    return `Map (${object.size}) {${entries.join(", ")}}`;
  }
  if (object instanceof Set) {
    const entries = [...object].slice(0, MAX_ENTRIES).map((v) => render(v, depth + 1, inner));
    return `Set (${object.size}) {${entries.join(", ")}}`;
  }
  if (object instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${object.byteLength} }`;
  return renderObject(object, depth, inner);
}

function quote(text: string): string {
  const truncated = text.length > MAX_INSPECT_STRING_CHARS;
  const shown = truncated ? text.slice(0, MAX_INSPECT_STRING_CHARS) : text;
  // deno-lint-ignore no-control-regex
  const escaped = shown.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/[\x00-\x1f]/g, (c) => {
    const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };
    return named[c] ?? `\\x${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`;
  });
  const more = text.length - shown.length;
  return `'${escaped}'` + (truncated ? `... ${more} more character${more > 1 ? "s" : ""}` : "");
}

function renderFunction(fn: (...args: unknown[]) => unknown): string {
  const keys = Object.keys(fn);
  const label = fn.name ? `[Function: ${fn.name}]` : "[Function (anonymous)]";
  return keys.length === 0 ? label : `${label} { ${keys.map((k) => `${key(k)}: [Object]`).join(", ")} }`;
}

function renderError(error: Error, depth: number, seen: object[]): string {
  const label = `[${error.name}: ${error.message}]`;
  const extra = Object.keys(error).filter((k) => k !== "stack" && k !== "message");
  if (extra.length === 0 || depth >= MAX_DEPTH) return label;
  const fields = extra.map((k) =>
    `${key(k)}: ${render((error as unknown as Record<string, unknown>)[k], depth + 1, seen)}`
  );
  return `{ ${label} ${fields.join(", ")} }`;
}

function renderArray(array: unknown[], depth: number, seen: object[]): string {
  if (array.length === 0) return "[]";
  const items = array.slice(0, MAX_ENTRIES).map((v) => render(v, depth + 1, seen));
  if (array.length > MAX_ENTRIES) items.push(`... ${array.length - MAX_ENTRIES} more items`);
  if (items.some((item) => item.includes("\n"))) return `[${indentLines(items)}\n]`;
  return `[ ${items.join(", ")} ]`;
}

function renderObject(object: object, depth: number, seen: object[]): string {
  const record = object as Record<string, unknown>;
  const keys = Object.keys(record).slice(0, MAX_ENTRIES);
  const prototype = Object.getPrototypeOf(object);
  const className = prototype === null
    ? "[Object: null prototype]"
    : prototype !== Object.prototype && typeof prototype.constructor === "function" && prototype.constructor.name
    ? prototype.constructor.name
    : "";
  const prefix = className ? `${className} ` : "";
  if (keys.length === 0) return `${prefix}{}`;
  const items = keys.map((k) => `${key(k)}: ${render(record[k], depth + 1, seen)}`);
  return `${prefix}{${indentLines(items)}\n}`;
}

function indentLines(items: string[]): string {
  return items.map((item) => "\n  " + item.replaceAll("\n", "\n  ")).join(",");
}

function key(name: string): string {
  return IDENTIFIER.test(name) ? name : quote(name);
}
