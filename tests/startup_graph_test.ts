/**
 * What a process loads at start-up (issue 14, idle footprint): packages that only some deployments or moments use are
 * reached through dynamic imports, never from the modules the server and the runners start with. PostgreSQL's and
 * MySQL's drivers cost each process that loads them 11–14 MiB and ~80 ms, where SQLite is the default; the push-time
 * import scanner (es-module-lexer) compiles WebAssembly as it loads (~2.7 MiB of a runner), and runners never scan.
 * Read from the module graph Deno resolves (`deno info --json`), following static imports only.
 */
import { assert, assertEquals } from "./helpers/assert.ts";

interface GraphDependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}

interface GraphModule {
  specifier: string;
  dependencies?: GraphDependency[];
}

interface Graph {
  roots: string[];
  modules: GraphModule[];
}

/**
 * The modules `main.ts` imports for each command whose process stays up: `serve` (the server) and `runner` (a
 * transaction or action runner). main.ts itself imports them dynamically, per command.
 */
const ENTRIES = ["src/server/mod.ts", "src/runtime/mod.ts", "src/server/transaction_syscalls.ts"];
/** npm packages loaded on demand: the two database drivers, and the scanner of pushed modules' imports. */
const ON_DEMAND = ["postgres", "mysql2", "es-module-lexer"];

/** The npm package a graph specifier names (`npm:/mysql2@3.24.6/promise` → `mysql2`), or null. */
function npmPackageOf(specifier: string): string | null {
  if (!specifier.startsWith("npm:")) return null;
  const path = specifier.slice("npm:".length).replace(/^\//, "");
  const scoped = path.startsWith("@");
  const name = path.split("/").slice(0, scoped ? 2 : 1).join("/");
  const versionAt = name.indexOf("@", scoped ? 1 : 0);
  return versionAt === -1 ? name : name.slice(0, versionAt);
}

/** The module graph of `entry`, as Deno resolves it. */
async function graphOf(entry: string): Promise<Graph> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: new URL("../", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(output.success, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout)) as Graph;
}

/** The npm packages `graph` reaches from its roots, through static imports only or through dynamic ones too. */
function npmPackagesReached(graph: Graph, withDynamic: boolean): Set<string> {
  const modules = new Map(graph.modules.map((module) => [module.specifier, module]));
  const packages = new Set<string>();
  const seen = new Set(graph.roots);
  const pending = [...graph.roots];
  while (pending.length > 0) {
    for (const dependency of modules.get(pending.pop()!)?.dependencies ?? []) {
      const target = dependency.code?.specifier;
      if (target === undefined || (dependency.isDynamic === true && !withDynamic)) continue;
      const npmPackage = npmPackageOf(target);
      if (npmPackage !== null) packages.add(npmPackage);
      else if (!seen.has(target)) {
        seen.add(target);
        pending.push(target);
      }
    }
  }
  return packages;
}

Deno.test("startup: the server and the runners load database drivers and the import scanner only when they use them", async () => {
  const graphs = new Map(await Promise.all(ENTRIES.map(async (entry) => [entry, await graphOf(entry)] as const)));
  for (const [entry, graph] of graphs) {
    const loaded = npmPackagesReached(graph, false);
    assertEquals(ON_DEMAND.filter((name) => loaded.has(name)), [], `${entry} imports them statically`);
  }
  // The graph read is sound: through the dynamic imports, the server reaches each of them.
  const reachable = npmPackagesReached(graphs.get("src/server/mod.ts")!, true);
  assertEquals(ON_DEMAND.filter((name) => reachable.has(name)), ON_DEMAND);
});
