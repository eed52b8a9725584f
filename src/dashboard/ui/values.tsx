/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * Convex values as the dashboard shows them, from their convex-JSON (the wire and storage form): int64 as `123n`,
 * bytes with their length, special floats by name, nested arrays and objects indented, and strings that are IDs of a
 * table as links to their document. Every type keeps a visible marker, so `1` (float64) and `1n` (int64) never look
 * alike.
 */
import type { JSX } from "preact";

/** A convex-JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What the viewer needs to turn IDs into links. */
export interface IdLinks {
  /** ID → its table (from the server, which decodes IDs). */
  idTables: Record<string, string>;
  onOpen: (id: string, table: string) => void;
}

function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The int64 in `{"$integer": base64}` (8 bytes, little-endian, two's complement). */
export function int64Of(base64: string): bigint {
  const bytes = base64ToBytes(base64);
  if (bytes.length !== 8) return 0n;
  return new DataView(bytes.buffer).getBigInt64(0, true);
}

/** The float in `{"$float": base64}` (NaN, ±Infinity, -0). */
export function floatOf(base64: string): number {
  const bytes = base64ToBytes(base64);
  return bytes.length === 8 ? new DataView(bytes.buffer).getFloat64(0, true) : NaN;
}

/** A one-key `{"$integer"|"$bytes"|"$float": string}` object's tag, or null. */
export function specialOf(value: JsonValue): { tag: "$integer" | "$bytes" | "$float"; text: string } | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 1) return null;
  const tag = keys[0];
  const text = value[tag];
  if ((tag === "$integer" || tag === "$bytes" || tag === "$float") && typeof text === "string") return { tag, text };
  return null;
}

/** The type name Convex gives a value. */
export function typeName(value: JsonValue): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return "float64";
  if (typeof value === "string") return "string";
  if (Array.isArray(value)) return "array";
  const special = specialOf(value);
  if (special) return special.tag === "$integer" ? "int64" : special.tag === "$bytes" ? "bytes" : "float64";
  return "object";
}

function floatText(value: number): string {
  if (Object.is(value, -0)) return "-0";
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity";
  return String(value);
}

/** One value on one line (table cells): nested values are summarised. */
export function CompactValue({ value, links }: { value: JsonValue | undefined; links?: IdLinks }): JSX.Element {
  if (value === undefined) return <span class="v-missing">unset</span>;
  if (value === null) return <span class="v-null">null</span>;
  if (typeof value === "boolean") return <span class="v-bool">{String(value)}</span>;
  if (typeof value === "number") return <span class="v-num">{floatText(value)}</span>;
  if (typeof value === "string") return <StringValue value={value} links={links} compact />;
  if (Array.isArray(value)) return <span class="v-nested">[{value.length} item{value.length === 1 ? "" : "s"}]</span>;
  const special = specialOf(value);
  if (special) return <SpecialValue {...special} />;
  const keys = Object.keys(value);
  return <span class="v-nested">{`{${keys.slice(0, 3).join(", ")}${keys.length > 3 ? ", …" : ""}}`}</span>;
}

function SpecialValue({ tag, text }: { tag: string; text: string }) {
  if (tag === "$integer") return <span class="v-int" title="int64">{int64Of(text).toString()}n</span>;
  if (tag === "$float") return <span class="v-num" title="float64">{floatText(floatOf(text))}</span>;
  const length = base64ToBytes(text).length;
  const preview = text.length > 24 ? text.slice(0, 24) + "…" : text;
  return <span class="v-bytes" title={`bytes (base64): ${text}`}>bytes({length}) {preview}</span>;
}

function StringValue({ value, links, compact }: { value: string; links?: IdLinks | undefined; compact?: boolean }) {
  const table = links?.idTables[value];
  if (links && table !== undefined) {
    return (
      <a
        class="v-id"
        href={`#open-${value}`}
        title={`ID of a document in ${table}`}
        onClick={(event) => {
          event.preventDefault();
          event.stopPropagation();
          links.onOpen(value, table);
        }}
      >
        <span class="v-id-table">{table}</span>
        {value}
      </a>
    );
  }
  const shown = compact && value.length > 80 ? value.slice(0, 80) + "…" : value;
  return <span class="v-str">"{shown}"</span>;
}

/** A whole value, nested values indented (the document view). */
export function ValueTree({ value, links, depth = 0 }: { value: JsonValue; links?: IdLinks; depth?: number }) {
  if (value === null || typeof value !== "object") return <CompactValue value={value} {...(links ? { links } : {})} />;
  const special = specialOf(value);
  if (special) return <SpecialValue {...special} />;
  if (Array.isArray(value)) {
    if (value.length === 0) return <span class="v-nested">[]</span>;
    return (
      <span class="v-block">
        [
        <ol class="v-list" start={0}>
          {value.map((item, i) => (
            <li key={i}>
              <ValueTree value={item} {...(links ? { links } : {})} depth={depth + 1} />
            </li>
          ))}
        </ol>
        ]
      </span>
    );
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return <span class="v-nested">{"{}"}</span>;
  return (
    <span class="v-block">
      {"{"}
      <dl class="v-fields">
        {keys.map((key) => (
          <div class="v-field" key={key}>
            <dt>{key}</dt>
            <dd>
              <ValueTree value={value[key]} {...(links ? { links } : {})} depth={depth + 1} />
              <span class="v-type">
                {typeName(value[key])}
                {key === "_creationTime" && typeof value[key] === "number" &&
                  ` · ${new Date(value[key] as number).toISOString()}`}
              </span>
            </dd>
          </div>
        ))}
      </dl>
      {"}"}
    </span>
  );
}

/**
 * The editor's text of a document: convex-JSON without the system fields (the server owns them), with int64 written
 * as `{"$int64": "<decimal>"}` instead of the wire's base64 bytes, so a person can read and change it.
 */
export function editableText(document: { [key: string]: JsonValue }): string {
  const { _id: _ignoredId, _creationTime: _ignoredTime, ...fields } = document;
  return JSON.stringify(mapInts(fields, (special) => ({ $int64: int64Of(special).toString() })), null, 2);
}

/**
 * The convex-JSON text to send for the editor's text: `{"$int64": "<decimal>"}` becomes the wire's
 * `{"$integer": "<base64>"}`. Text that is not JSON, or an int64 out of range, is sent as typed so the server's
 * message explains what is wrong.
 */
export function wireText(text: string): string {
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
  try {
    return JSON.stringify(fromEditable(parsed, 0));
  } catch {
    return text;
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function fromEditable(value: JsonValue, depth: number): JsonValue {
  if (depth > 64 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => fromEditable(item, depth + 1));
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === "$int64" && typeof value.$int64 === "string") {
    const n = BigInt(value.$int64.trim());
    if (n < INT64_MIN || n > INT64_MAX) throw new RangeError("int64 out of range");
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigInt64(0, n, true);
    return { $integer: btoa(String.fromCharCode(...bytes)) };
  }
  const out: { [key: string]: JsonValue } = {};
  for (const key of keys) out[key] = fromEditable(value[key], depth + 1);
  return out;
}

function mapInts(value: JsonValue, map: (base64: string) => JsonValue): JsonValue {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => mapInts(item, map));
  const special = specialOf(value);
  if (special?.tag === "$integer") return map(special.text);
  if (special) return value;
  const out: { [key: string]: JsonValue } = {};
  for (const [key, item] of Object.entries(value)) out[key] = mapInts(item, map);
  return out;
}

/** The document with `_id` first and `_creationTime` last, as people read documents. */
export function systemFieldsAround(document: { [key: string]: JsonValue }): { [key: string]: JsonValue } {
  const { _id, _creationTime, ...fields } = document;
  return {
    ...(_id === undefined ? {} : { _id }),
    ...fields,
    ...(_creationTime === undefined ? {} : { _creationTime }),
  };
}
