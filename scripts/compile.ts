/**
 * `deno task compile`: builds `dist/denvex`, one executable holding the server, its runner mode and the npm packages
 * of the server's own lockfile (src/server/deno.lock), never the test tooling in deno.lock.
 *
 * Prints what the executable embeds (sizes) first. `deno compile` needs its `denort` base binary: from `DENORT_BIN`,
 * from Deno's cache, or downloaded from dl.deno.land; where none of these works, this says what to do instead of
 * Deno's download error and backtrace.
 *
 * The executable's permissions are fixed now, at build time: it cannot grant itself the directory a later `--data`
 * names, so it may read and write what its OS user may (user code still runs in permission-less workers inside runner
 * processes). `deno task start` and the container keep the data directory scoped.
 */
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { SERVER_V8_FLAGS } from "../src/server/launcher.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const SERVER_LOCK = join(ROOT, "src/server/deno.lock");
const OUTPUT = join(ROOT, "dist/denvex");
const MIB = 1024 * 1024;

/** The `deno compile` arguments; `envNames` are the variables the server reads. */
export function compileArgs(output: string, envNames: readonly string[]): string[] {
  return [
    "compile",
    `--lock=${SERVER_LOCK}`,
    "--node-modules-dir=none",
    "--cached-only",
    // `deno task check` type-checks; a build should not fail on a type error that does not change the program.
    "--no-check",
    "--unstable-worker-options",
    "--no-prompt",
    // The server's V8 flags (src/server/launcher.ts). Baked into the executable, they apply to its runner mode too,
    // and Deno reads them after DENO_V8_FLAGS, where the runners' own flags are: there a runner's young generation
    // gets the server's cap instead of RUNNER_MAX_SEMI_SPACE_MIB (src/runtime); its heap cap is unaffected.
    `--v8-flags=${SERVER_V8_FLAGS}`,
    "--allow-net",
    "--allow-sys=networkInterfaces",
    "--allow-read",
    "--allow-write",
    `--allow-env=${envNames.join(",")}`,
    "--allow-run",
    "--include",
    "src/runtime/worker/worker_main.ts",
    "--output",
    output,
    "main.ts",
  ];
}

/** Bytes under `path` (files only; symlinks not followed). */
async function sizeOf(path: string): Promise<number> {
  const info = await Deno.lstat(path).catch(() => null);
  if (info === null) return 0;
  if (!info.isDirectory) return info.isFile ? info.size : 0;
  let total = 0;
  for await (const entry of Deno.readDir(path)) total += await sizeOf(join(path, entry.name));
  return total;
}

/** Where Deno keeps its caches (`deno info --json`). */
async function denoDir(): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped", stderr: "null" })
    .output();
  return JSON.parse(new TextDecoder().decode(output.stdout)).denoDir as string;
}

/** The npm packages of the server's lockfile and the bytes each occupies in Deno's cache. */
async function embeddedPackages(cacheDir: string): Promise<{ name: string; bytes: number }[]> {
  const lock = JSON.parse(await Deno.readTextFile(SERVER_LOCK)) as { npm?: Record<string, unknown> };
  const packages = [];
  for (const key of Object.keys(lock.npm ?? {})) {
    // `name@version` or `name@version_peer+deps`: the folder is <registry>/<name>/<version>.
    const at = key.lastIndexOf("@");
    const name = key.slice(0, at);
    const version = key.slice(at + 1).split("_")[0];
    packages.push({ name, bytes: await sizeOf(join(cacheDir, "npm/registry.npmjs.org", name, version)) });
  }
  return packages.sort((a, b) => b.bytes - a.bytes);
}

/** The denort base binary `deno compile` will use offline, or null when it would have to download one. */
async function localDenort(cacheDir: string): Promise<string | null> {
  const fromEnv = Deno.env.get("DENORT_BIN");
  if (fromEnv) return fromEnv;
  const zip = join(cacheDir, `dl/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`);
  return await sizeOf(zip) > 0 ? zip : null;
}

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}

async function main(): Promise<number> {
  const { SERVER_ENV_NAMES } = await import("../src/server/mod.ts");
  const cacheDir = await denoDir();
  const packages = await embeddedPackages(cacheDir);
  const packageBytes = packages.reduce((sum, p) => sum + p.bytes, 0);
  const sourceBytes = await sizeOf(join(ROOT, "src")) + await sizeOf(join(ROOT, "main.ts"));
  console.log(`embeds: ${packages.length} npm packages, ${mib(packageBytes)}; sources ${mib(sourceBytes)}`);
  console.log(`  largest: ${packages.slice(0, 5).map((p) => `${p.name} ${mib(p.bytes)}`).join(", ")}`);
  const denort = await localDenort(cacheDir);
  if (denort === null) console.log("no local denort: deno compile downloads it from dl.deno.land");
  const result = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(OUTPUT, SERVER_ENV_NAMES),
    cwd: ROOT,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(result.stderr);
  if (!result.success) {
    if (denort === null && /dl\.deno\.land|download|denort/i.test(stderr)) {
      console.error(
        `denvex compile: deno compile could not download its denort base binary (v${Deno.version.deno}, ` +
          `${Deno.build.target}). Download denort-${Deno.build.target}.zip for v${Deno.version.deno} from ` +
          `https://dl.deno.land/release/v${Deno.version.deno}/ on a machine that can, unzip it, and run again with ` +
          `DENORT_BIN=/path/to/denort deno task compile (or put the zip at ` +
          `${join(cacheDir, `dl/release/v${Deno.version.deno}/`)}).`,
      );
      return 1;
    }
    console.error(stderr.trim());
    return result.code || 1;
  }
  if (stderr.trim() !== "") console.error(stderr.trim());
  console.log(`built ${OUTPUT}: ${mib(await sizeOf(OUTPUT))}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
