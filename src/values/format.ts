/**
 * Human-readable rendering of values in error messages, following the official backend's `Display` of values so
 * messages read the same: int64 `5`, float64 `5.0`, strings quoted, bytes `b"<base64>"`, `[1, 2]`, `{a: 1.0}`.
 */
import { encodeBase64 } from "./base64.ts";
import { describeNonValue, isPlainObject, sortedFieldNames } from "./kind.ts";
import type { Value } from "./types.ts";

/** Longest rendering before it is cut with "…"; messages stay readable even for 1 MiB documents. */
const MAX_RENDERED_LENGTH = 16_384;

/** A float64 as Rust's `{:?}` prints it: `1.0`, `-0.0`, `1.5e-7`, `1e21`, `NaN`, `inf`, `-inf`. */
export function formatFloat(n: number): string {
  if (n !== n) return "NaN";
  if (n === Infinity) return "inf";
  if (n === -Infinity) return "-inf";
  if (n === 0) return 1 / n < 0 ? "-0.0" : "0.0";
  const magnitude = Math.abs(n);
  if (magnitude >= 1e16 || magnitude < 1e-4) return n.toExponential().replace("e+", "e");
  const text = String(n);
  return text.includes(".") ? text : `${text}.0`;
}

/** A string literal as Rust's `{:?}` prints it: double quotes, `\"`, `\\`, `\n`, `\r`, `\t`, `\0`, `\u{..}`. */
export function formatString(s: string): string {
  let out = '"';
  let runStart = 0;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code >= 0x20 && code !== 0x22 && code !== 0x5c && code !== 0x7f) continue;
    out += s.slice(runStart, i);
    runStart = i + 1;
    switch (code) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      case 0x00:
        out += "\\0";
        break;
      default:
        out += `\\u{${code.toString(16)}}`;
    }
  }
  return out + s.slice(runStart) + '"';
}

/** Renders a value (or `undefined`, a missing value) for an error message. */
export function formatValue(value: Value | undefined): string {
  const out: string[] = [];
  render(value, out, { length: 0 });
  const text = out.join("");
  return text.length > MAX_RENDERED_LENGTH ? `${text.slice(0, MAX_RENDERED_LENGTH)}…` : text;
}

function render(value: Value | undefined, out: string[], budget: { length: number }): void {
  // Stop descending once the message is long enough; formatValue cuts the tail.
  if (budget.length > MAX_RENDERED_LENGTH) return;
  let piece: string;
  switch (typeof value) {
    case "undefined":
      piece = "undefined";
      break;
    case "bigint":
    case "boolean":
      piece = String(value);
      break;
    case "number":
      piece = formatFloat(value);
      break;
    case "string":
      piece = formatString(value);
      break;
    case "object": {
      if (value === null) {
        piece = "null";
        break;
      }
      if (value instanceof ArrayBuffer) {
        piece = `b"${encodeBase64(new Uint8Array(value))}"`;
        break;
      }
      if (Array.isArray(value)) {
        out.push("[");
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(", ");
          render(value[i], out, budget);
        }
        out.push("]");
        budget.length += 2;
        return;
      }
      if (isPlainObject(value)) {
        out.push("{");
        const names = sortedFieldNames(value);
        for (let i = 0; i < names.length; i++) {
          if (i > 0) out.push(", ");
          out.push(names[i], ": ");
          budget.length += names[i].length + 4;
          render(value[names[i]], out, budget);
        }
        out.push("}");
        budget.length += 2;
        return;
      }
      piece = describeNonValue(value);
      break;
    }
    default:
      piece = describeNonValue(value);
  }
  out.push(piece);
  budget.length += piece.length;
}
