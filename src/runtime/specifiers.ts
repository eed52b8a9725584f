/**
 * Import specifier checks for pushed modules.
 *
 * Worker permissions do not cover `npm:` imports (they bypass the sandbox, platform-notes.md), so the only safe
 * module graph is the pushed file tree itself: relative specifiers that stay inside it. The specifiers come from a
 * real ES module lexer (es-module-lexer), never a text search: a doc comment, string or regular expression that
 * mentions an import is not one (published packages document their own imports in JSDoc, and esbuild keeps those
 * comments). A computed `import(expr)` is caught at run time by the worker's read permission (only the modules folder)
 * and the runner's `--cached-only`.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { posix } from "node:path";
import { init as initLexer, parse as lexModule } from "es-module-lexer";
import { ModuleLoadError } from "./errors.ts";

// The lexer is WebAssembly compiled from bytes it carries (no file or network access); compiled once per process.
await initLexer();

/** One import/export specifier found in a module's source. */
export interface FoundSpecifier {
  specifier: string;
  /** 1-based line of the statement, for error messages. */
  line: number;
}

/**
 * The specifiers `source` imports: static imports and re-exports (any phase), and dynamic imports with a literal
 * specifier. Throws `ModuleLoadError` naming `modulePath` when the source does not lex as an ES module.
 */
export function scanSpecifiers(source: string, modulePath = ""): FoundSpecifier[] {
  let imports: ReturnType<typeof lexModule>[0];
  try {
    [imports] = lexModule(withJsLineTerminators(source));
  } catch (error) {
    const index = (error as { idx?: unknown }).idx;
    const where = typeof index === "number" ? ` (line ${lineOf(source, index)})` : "";
    throw new ModuleLoadError(modulePath, `Module ${modulePath}${where} cannot be parsed as an ES module`);
  }
  const found: FoundSpecifier[] = [];
  for (const entry of imports) {
    if (entry.type === "import-meta") continue;
    // A dynamic import of a computed expression has no specifier to check here (see the header).
    if (typeof entry.specifier !== "string") continue;
    found.push({ specifier: entry.specifier, line: lineOf(source, entry.start) });
  }
  return found;
}

/**
 * `source` with U+2028/U+2029 as "\n". JavaScript ends a line comment at either (so `// x<U+2028>import "npm:y"`
 * imports), but the lexer knows only \r and \n; the swap keeps every offset. A raw separator inside a string literal
 * then fails to lex and the module is refused: bundlers escape non-ASCII characters, so only crafted code has one.
 */
function withJsLineTerminators(source: string): string {
  return source.replace(/[\u2028\u2029]/g, "\n");
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
