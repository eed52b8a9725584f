/**
 * Convex's snapshot value format: documents as "clean" JSON (int64 as a decimal string, bytes as base64, NaN and
 * ±Infinity as the strings "NaN", "Infinity", "-Infinity", -0 as `-0.0`), and beside them an export context per
 * document that says which strings (and NaN payloads) were not strings, so a value round-trips exactly.
 *
 * denvex writes each table's shape as `unknown`, under which every such value needs a context; it records no shape
 * inference. On import the contexts are applied; a shape other than `unknown` (a Convex Cloud export) is read the
 * same way, which decodes every field the cloud export marked, but not fields whose type only its shape implies.
 */
import { decodeBase64, encodeBase64, type Value } from "../values/mod.ts";

/** The JSON form of an export context (Convex's `ExportContext`): "infer" when absent. */
export type ExportContext = string | ExportContext[] | { [field: string]: ExportContext };

const INFER = "infer";

/** `value` as clean JSON text. */
export function cleanJsonText(value: Value): string {
  if (value === null) return "null";
  if (typeof value === "bigint") return `"${value}"`;
  if (typeof value === "number") {
    if (Number.isNaN(value)) return '"NaN"';
    if (value === Infinity) return '"Infinity"';
    if (value === -Infinity) return '"-Infinity"';
    if (value === 0 && 1 / value < 0) return "-0.0";
    return JSON.stringify(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof ArrayBuffer) return `"${encodeBase64(new Uint8Array(value))}"`;
  if (Array.isArray(value)) return `[${value.map(cleanJsonText).join(",")}]`;
  const fields = Object.keys(value).map((name) => `${JSON.stringify(name)}:${cleanJsonText(value[name])}`);
  return `{${fields.join(",")}}`;
}

/** The export context `value` needs under the shape `unknown`, or null when it needs none. */
export function exportContextOf(value: Value): ExportContext | null {
  if (typeof value === "bigint") return "int64";
  if (value instanceof ArrayBuffer) return "bytes";
  if (typeof value === "number") {
    if (Number.isNaN(value)) {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setFloat64(0, value, true);
      return { $float64NaN: encodeBase64(bytes) };
    }
    return value === Infinity || value === -Infinity ? "float64inf" : null;
  }
  if (Array.isArray(value)) {
    const contexts = value.map(exportContextOf);
    return contexts.every((context) => context === null) ? null : contexts.map((context) => context ?? INFER);
  }
  if (value !== null && typeof value === "object") {
    const contexts: Record<string, ExportContext> = {};
    let any = false;
    for (const name of Object.keys(value)) {
      const context = exportContextOf(value[name]);
      if (context !== null) {
        contexts[name] = context;
        any = true;
      }
    }
    return any ? contexts : null;
  }
  return null;
}

/** Decodes parsed clean JSON with its export context (undefined: "infer"). Throws on a context that does not fit. */
export function applyExportContext(json: unknown, context: ExportContext | undefined): Value {
  if (context === undefined || context === INFER) return inferred(json);
  if (typeof json === "string") {
    if (context === "int64") return BigInt.asIntN(64, parseInt64(json));
    if (context === "bytes") return decodeBase64(json).buffer as ArrayBuffer;
    if (context === "float64inf") {
      if (json === "Infinity") return Infinity;
      if (json === "-Infinity") return -Infinity;
    }
    if (typeof context === "object" && !Array.isArray(context) && typeof context.$float64NaN === "string") {
      const bytes = decodeBase64(context.$float64NaN);
      if (bytes.length === 8 && json === "NaN") return new DataView(bytes.buffer).getFloat64(0, true);
    }
    throw new Error(`a string ${JSON.stringify(json).slice(0, 40)} does not fit its export context`);
  }
  if (Array.isArray(json) && Array.isArray(context)) {
    if (json.length !== context.length) throw new Error("an array's export context has another length");
    return json.map((element, i) => applyExportContext(element, context[i]));
  }
  if (json !== null && typeof json === "object" && !Array.isArray(json) && typeof context === "object") {
    const fields = context as Record<string, ExportContext>;
    return objectOf(json as Record<string, unknown>, (name, field) => applyExportContext(field, fields[name]));
  }
  throw new Error("a value does not fit its export context");
}

function inferred(json: unknown): Value {
  if (json === null || typeof json === "boolean" || typeof json === "number" || typeof json === "string") {
    return json;
  }
  if (Array.isArray(json)) return json.map(inferred);
  if (typeof json === "object") return objectOf(json as Record<string, unknown>, (_name, field) => inferred(field));
  throw new Error("not a JSON value");
}

function objectOf(json: Record<string, unknown>, decode: (name: string, field: unknown) => Value): Value {
  const object: Record<string, Value> = {};
  for (const name of Object.keys(json)) {
    // defineProperty: a field named "__proto__" stays data.
    Object.defineProperty(object, name, { value: decode(name, json[name]), enumerable: true, writable: true });
  }
  return object;
}

function parseInt64(text: string): bigint {
  if (!/^-?\d{1,19}$/.test(text)) throw new Error(`"${text.slice(0, 30)}" is not an int64`);
  const value = BigInt(text);
  if (value !== BigInt.asIntN(64, value)) throw new Error(`"${text}" is out of the int64 range`);
  return value;
}
