/**
 * Import specifier checks for pushed modules.
 *
 * Worker permissions do not cover `npm:` imports (they bypass the sandbox, platform-notes.md), so the only safe
 * module graph is the pushed file tree itself: relative specifiers that stay inside it. esbuild output is regular, so
 * a scan for the four statement forms it emits is enough; a computed `import(expr)` is caught at run time by the
 * worker's read permission (only the modules folder) and the runner's `--cached-only`.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { posix } from "node:path";

/** One import/export specifier found in a module's source. */
export interface FoundSpecifier {
  specifier: string;
  /** 1-based line of the statement, for error messages. */
  line: number;
}

// `import x from "s"`, `import {a as b} from "s"`, `export * from "s"`, `export {a} from "s"` (clauses may span lines).
const FROM_CLAUSE = /(?:^|[;\s}])(?:import|export)(?:\s+type)?\s*[\w$*{][^;"'`]*?\bfrom\s*(["'])([^"'\n]*)\1/g;
// `import "s"` (side-effect import).
const BARE_IMPORT = /(?:^|[;\s}])import\s*(["'])([^"'\n]*)\1/g;
// `import("s")` with a literal argument.
const DYNAMIC_IMPORT = /\bimport\s*\(\s*(["'])([^"'\n]*)\1\s*[,)]/g;

/**
 * Finds the static specifiers of `source` (import/export-from, side-effect imports, literal dynamic imports). A static
 * statement that provably sits in a comment line is skipped (see `inCommentLine`): published packages document their
 * own imports in JSDoc (` * import { Migrations } from "@convex-dev/migrations"`), and esbuild keeps those comments.
 */
export function scanSpecifiers(source: string): FoundSpecifier[] {
  const found: FoundSpecifier[] = [];
  for (const pattern of [FROM_CLAUSE, BARE_IMPORT, DYNAMIC_IMPORT]) {
    for (const match of source.matchAll(pattern)) {
      const start = match.index ?? 0;
      if (pattern !== DYNAMIC_IMPORT) {
        const keywordIndex = start + match[0].search(/import|export/);
        if (inCommentLine(source, keywordIndex, start + match[0].length)) continue;
      }
      const specifierIndex = start + match[0].lastIndexOf(match[2]);
      found.push({ specifier: match[2], line: lineOf(source, specifierIndex) });
    }
  }
  return found;
}

/** JavaScript's line terminators. */
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/**
 * Whether the static import/export statement at `keywordIndex..endIndex` is surely comment text, decided on its line
 * alone (a lexer could be misled into taking code for a comment; this cannot):
 * - the statement ends on the line it starts on;
 * - the line before it is only `*` (a block-comment line: in code, `* import …` cannot parse), or starts with `//`
 *   and holds no quote, backtick or `*\/`: without one of those, nothing opened on an earlier line (a string
 *   continued with `\`, a template literal, a block comment) can close before the statement, so it is in the comment.
 * Dynamic `import("…")` is an expression that may follow anything, so it is never skipped.
 */
function inCommentLine(source: string, keywordIndex: number, endIndex: number): boolean {
  if (LINE_TERMINATOR.test(source.slice(keywordIndex, endIndex))) return false;
  let lineStart = keywordIndex;
  while (lineStart > 0 && !LINE_TERMINATOR.test(source[lineStart - 1])) lineStart--;
  const prefix = source.slice(lineStart, keywordIndex);
  if (/^[ \t]*\*[ \t]*$/.test(prefix)) return true;
  return /^[ \t]*\/\//.test(prefix) && !/["'`]|\*\//.test(prefix);
}

/**
 * Returns why `specifier`, imported by `modulePath`, is not allowed, or null if it is a relative import that stays
 * inside the module tree and names a pushed module (`knownPaths`).
 */
export function checkSpecifier(modulePath: string, specifier: string, knownPaths: ReadonlySet<string>): string | null {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(specifier)) {
    const scheme = specifier.slice(0, specifier.indexOf(":") + 1);
    return `imports "${specifier}": ${scheme} imports are not allowed (bundle dependencies into the push)`;
  }
  if (specifier.startsWith("/")) return `imports "${specifier}": absolute paths are not allowed`;
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
    return `imports "${specifier}": bare specifiers are not allowed (the bundle must not have external packages)`;
  }
  const target = posix.normalize(posix.join(posix.dirname(modulePath), specifier));
  if (target.startsWith("../") || target === ".." || posix.isAbsolute(target)) {
    return `imports "${specifier}", which is outside the module tree`;
  }
  if (!knownPaths.has(target)) return `imports "${specifier}" (${target}), which is not part of the push`;
  return null;
}

function lineOf(source: string, index: number): number {
  let line = 1;
  for (let i = source.indexOf("\n"); i !== -1 && i < index; i = source.indexOf("\n", i + 1)) line++;
  return line;
}
