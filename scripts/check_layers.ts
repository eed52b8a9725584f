/**
 * `deno task layers`: checks that `src/` folders depend on each other one way. It reads the module graph Deno itself
 * resolves (`deno info --json`, so type-only imports count too) and reports, for every import from one `src/` folder
 * into another:
 *
 * - an upward import: the target folder sits at the same or a higher layer than the importer (see `LAYERS`);
 * - an import past a face: the target is not the folder's `mod.ts`;
 * - folder cycles (which upward imports imply, listed for the picture) and file cycles anywhere in `src/`.
 *
 * `--graph` prints the folder dependency picture (edges with import counts) instead of failing. Exits 1 on a
 * violation, so a test task can run it.
 */

/** Folders by layer: a folder may import only folders on lower layers. Same-layer folders are independent. */
const LAYERS: readonly (readonly string[])[] = [
  ["errors", "metrics", "environment"],
  ["values", "components"],
  ["persistence", "auth"],
  ["database"],
  ["runtime", "subscriptions", "storage", "search"],
  ["functions"],
  ["scheduler", "deploy", "snapshot"],
  // Below http: the HTTP routes serve queries from the sync layer's shared query cache and mount its hub.
  ["sync"],
  ["http"],
  // The admin dashboard: a client of the backend beside the HTTP API, mounted by the server.
  ["dashboard"],
  ["server"],
];

interface Edge {
  from: string;
  to: string;
}

interface GraphModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

const ROOT = new URL("../", import.meta.url).href;
const SRC = ROOT + "src/";

function folderOf(fileUrl: string): string | null {
  if (!fileUrl.startsWith(SRC)) return null;
  return fileUrl.slice(SRC.length).split("/")[0];
}

function layerOf(folder: string): number {
  const layer = LAYERS.findIndex((folders) => folders.includes(folder));
  if (layer === -1) throw new Error(`src/${folder} has no layer: add it to LAYERS in scripts/check_layers.ts`);
  return layer;
}

/**
 * Entry points of the module graph: the server, the user-code worker, which the runtime starts by URL
 * (`new Worker(...)`), and the node runner's main, which node runners run by path (`deno run …`): no static import
 * reaches those two from `main.ts`.
 */
const ROOTS = ["main.ts", "src/runtime/worker/worker_main.ts", "src/runtime/node/runner_main.ts"];

async function moduleGraph(): Promise<Edge[]> {
  const edges = new Map<string, Edge>();
  for (const root of ROOTS) {
    for (const edge of await graphEdges(root)) edges.set(`${edge.from} ${edge.to}`, edge);
  }
  return [...edges.values()];
}

/** The `src/` → `src/` imports reachable from `root`, as Deno resolves them. */
async function graphEdges(root: string): Promise<Edge[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    cwd: new URL(ROOT).pathname,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`deno info ${root} failed`);
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as { modules: GraphModule[] };
  const edges: Edge[] = [];
  for (const module of graph.modules) {
    if (!module.specifier.startsWith(SRC)) continue;
    for (const dependency of module.dependencies ?? []) {
      for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
        if (target?.startsWith(SRC)) edges.push({ from: module.specifier, to: target });
      }
    }
  }
  return edges;
}

function relative(fileUrl: string): string {
  return fileUrl.slice(ROOT.length);
}

function layerViolations(edges: Edge[]): string[] {
  const problems: string[] = [];
  for (const { from, to } of edges) {
    const fromFolder = folderOf(from)!;
    const toFolder = folderOf(to)!;
    if (fromFolder === toFolder) continue;
    if (layerOf(toFolder) >= layerOf(fromFolder)) {
      problems.push(`upward import: ${relative(from)} -> ${relative(to)}`);
    }
    if (!to.endsWith(`/src/${toFolder}/mod.ts`)) {
      problems.push(`import past src/${toFolder}/mod.ts: ${relative(from)} -> ${relative(to)}`);
    }
  }
  return problems;
}

/** File cycles, found by a depth-first search (each cycle reported once, by its smallest member). */
function fileCycles(edges: Edge[]): string[] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    if (!next.has(from)) next.set(from, new Set());
    next.get(from)!.add(to);
  }
  const cycles = new Set<string>();
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const target of next.get(file) ?? []) {
      if (state.get(target) === "open") {
        const cycle = stack.slice(stack.indexOf(target)).map(relative);
        const start = cycle.indexOf([...cycle].sort()[0]);
        const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
        cycles.add(`file cycle: ${[...rotated, rotated[0]].join(" -> ")}`);
      } else if (!state.has(target)) {
        visit(target);
      }
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of next.keys()) if (!state.has(file)) visit(file);
  return [...cycles];
}

function folderPicture(edges: Edge[]): string[] {
  const counts = new Map<string, number>();
  for (const { from, to } of edges) {
    const key = `${folderOf(from)} -> ${folderOf(to)}`;
    if (folderOf(from) !== folderOf(to)) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => `${key} (${count})`);
}

if (import.meta.main) {
  const edges = await moduleGraph();
  if (Deno.args.includes("--graph")) {
    console.log(folderPicture(edges).join("\n"));
  } else {
    const problems = [...layerViolations(edges), ...fileCycles(edges)];
    for (const problem of problems) console.error(problem);
    console.error(`layers: ${problems.length} problem(s) in ${edges.length} imports between src/ files`);
    if (problems.length > 0) Deno.exit(1);
  }
}
