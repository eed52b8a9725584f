/**
 * `deno task bench`: runs every `scripts/bench/*.ts` in name order, one process at a time so benchmarks never compete
 * for the machine's cores. Arguments filter by file name: `deno task bench sqlite` runs the files whose name contains
 * "sqlite". Exits non-zero if any benchmark failed, after running them all.
 *
 * Each benchmark is a standalone script printing its own figures (as ratios against a baseline measured in the same
 * run); this runner imports none of them, so adding a file to scripts/bench/ is all it takes.
 */

import { fileURLToPath } from "node:url";

const BENCH_DIR = new URL("./bench/", import.meta.url);

/**
 * Benchmarks are the repository's own trusted scripts and need whatever the code they measure needs (sockets,
 * temporary files, runner processes), so they run with all permissions, like the tests.
 */
const BENCH_FLAGS = ["run", "--allow-all", "--cached-only", "--unstable-worker-options"];

async function benchFiles(filters: readonly string[]): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(BENCH_DIR)) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    if (filters.length > 0 && !filters.some((filter) => entry.name.includes(filter))) continue;
    names.push(entry.name);
  }
  return names.sort();
}

async function runBench(name: string): Promise<{ name: string; code: number; seconds: number }> {
  console.log(`\n=== ${name} ===`);
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [...BENCH_FLAGS, fileURLToPath(new URL(name, BENCH_DIR))],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const { code } = await child.status;
  return { name, code, seconds: (performance.now() - started) / 1000 };
}

async function main(filters: readonly string[]): Promise<number> {
  const names = await benchFiles(filters);
  if (names.length === 0) {
    console.error(`bench: no benchmark in scripts/bench/${filters.length ? ` matching ${filters.join(", ")}` : ""}`);
    return 1;
  }
  const results = [];
  for (const name of names) results.push(await runBench(name));
  console.log("\n=== summary ===");
  for (const { name, code, seconds } of results) {
    console.log(`${code === 0 ? "ok    " : "FAILED"} ${name} (${seconds.toFixed(1)} s)`);
  }
  return results.every(({ code }) => code === 0) ? 0 : 1;
}

Deno.exit(await main(Deno.args));
