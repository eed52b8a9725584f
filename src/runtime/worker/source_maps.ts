/**
 * Maps stack positions in pushed bundles back to the developer's sources with the source maps the CLI pushes next to
 * each module (`messages.js.map`), so errors read `at handler (../convex/messages.ts:12:5)` as on the official
 * backend. Only used on the error path; decoded maps are cached.
 */
import { fileURLToPath } from "node:url";

/** Decoded maps kept per worker. */
const MAX_CACHED_MAPS = 32;
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_VALUES = new Map([...BASE64].map((char, index) => [char, index]));

/** One mapping segment: generated column → source index, line, column (all 0-based). */
type Segment = [generatedColumn: number, source: number, line: number, column: number];

interface DecodedMap {
  sources: string[];
  /** Per generated line, segments sorted by generated column. */
  lines: Segment[][];
}

const cache = new Map<string, DecodedMap | null>();

/** The original position of a 1-based `line:column` in the module at `moduleUrl`, or null if unknown. */
export function originalPosition(moduleUrl: string, line: number, column: number): string | null {
  const map = loadMap(moduleUrl);
  const segments = map?.lines[line - 1];
  if (!map || !segments || segments.length === 0) return null;
  let found: Segment | null = null;
  for (const segment of segments) {
    if (segment[0] > column - 1) break;
    found = segment;
  }
  found ??= segments[0];
  const source = map.sources[found[1]];
  return source === undefined ? null : `${source}:${found[2] + 1}:${found[3] + 1}`;
}

function loadMap(moduleUrl: string): DecodedMap | null {
  if (cache.has(moduleUrl)) return cache.get(moduleUrl)!;
  let decoded: DecodedMap | null = null;
  try {
    const raw = JSON.parse(Deno.readTextFileSync(fileURLToPath(moduleUrl) + ".map")) as {
      sources?: string[];
      mappings?: string;
    };
    if (Array.isArray(raw.sources) && typeof raw.mappings === "string") {
      decoded = { sources: raw.sources, lines: decodeMappings(raw.mappings) };
    }
  } catch {
    // No map, unreadable or malformed: positions stay as they are in the bundle.
  }
  if (cache.size >= MAX_CACHED_MAPS) cache.delete(cache.keys().next().value!);
  cache.set(moduleUrl, decoded);
  return decoded;
}

/** Decodes the `mappings` field (base64 VLQ, fields relative to the previous segment). */
function decodeMappings(mappings: string): Segment[][] {
  const lines: Segment[][] = [];
  let source = 0;
  let line = 0;
  let column = 0;
  for (const lineText of mappings.split(";")) {
    const segments: Segment[] = [];
    let generatedColumn = 0;
    for (const segmentText of lineText.split(",")) {
      if (segmentText === "") continue;
      const fields = decodeVlq(segmentText);
      generatedColumn += fields[0];
      if (fields.length >= 4) {
        source += fields[1];
        line += fields[2];
        column += fields[3];
        segments.push([generatedColumn, source, line, column]);
      }
    }
    lines.push(segments);
  }
  return lines;
}

function decodeVlq(text: string): number[] {
  const values: number[] = [];
  let value = 0;
  let shift = 0;
  for (const char of text) {
    const digit = BASE64_VALUES.get(char);
    if (digit === undefined) break;
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    values.push(value & 1 ? -Math.floor(value / 2) : Math.floor(value / 2));
    value = 0;
    shift = 0;
  }
  return values;
}
