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

/** Finds the static specifiers of `source` (import/export-from, side-effect imports, literal dynamic imports). */
export function scanSpecifiers(source: string): FoundSpecifier[] {
  const found: FoundSpecifier[] = [];
  for (const pattern of [FROM_CLAUSE, BARE_IMPORT, DYNAMIC_IMPORT]) {
    for (const match of source.matchAll(pattern)) {
      const specifierIndex = (match.index ?? 0) + match[0].lastIndexOf(match[2]);
      found.push({ specifier: match[2], line: lineOf(source, specifierIndex) });
    }
  }
  return found;
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
