/**
 * The dashboard's client (Preact + `ui/*.tsx`), bundled with esbuild-wasm at run time: no build output is committed.
 * The server starts the build in the background when the dashboard is mounted, so it is ready by the time a person
 * opens the page; a request that comes earlier waits for it. The bundle is cached in the data directory by source hash
 * (see {@link AssetCache}), so a restarted server builds nothing.
 *
 * Where a build runs: in a short-lived child process (`build_child.ts`), which hands the bundle back over stdout and
 * takes esbuild's memory with it when it exits. Only when that is impossible (no permission to start its own
 * executable, or the child failed) does the process build in a worker of its own (`bundleInWorker`), which is slower
 * and leaves it ~70–140 MB larger for a while (esbuild's wasm memory); it says so on stderr.
 */
import { bundleInChild, mayStartChild } from "./build_child.ts";
import { bundleSources } from "./_bundle_sources.ts";

/** The built assets, with what they cost. */
export interface DashboardAssets {
  js: Uint8Array;
  jsGzip: Uint8Array;
  css: Uint8Array;
  cssGzip: Uint8Array;
  /** A content hash of both, for `ETag`. */
  etag: string;
  /** Wall time of reading the cached bundle, or of building it (child process or worker). */
  buildMs: number;
}

/** Longest a bundling worker may take before the build counts as failed. */
const BUNDLE_TIMEOUT_MS = 60_000;

/** What the worker is sent: the wasm and every source, so it reads nothing itself. */
interface BundleRequest {
  wasm: Uint8Array;
  files: Readonly<Record<string, string>>;
  packages: Readonly<Record<string, string>>;
}

/**
 * The worker's main, serialised with `toString()` after esbuild's browser build and `bundleSources` in the worker's
 * source: it must use nothing from outside itself.
 */
function bundlingWorkerMain(bundle: typeof bundleSources, api: Parameters<typeof bundleSources>[0]): void {
  const scope = self as unknown as {
    onmessage: ((event: MessageEvent<BundleRequest>) => void) | null;
    postMessage(message: unknown, transfer?: Transferable[]): void;
  };
  scope.onmessage = async (event) => {
    const { wasm, files, packages } = event.data;
    try {
      const js = await bundle(api, wasm, files, packages);
      scope.postMessage({ js }, [js.buffer as ArrayBuffer]);
    } catch (error) {
      scope.postMessage({ error: error instanceof Error ? error.message : String(error) });
    }
  };
}

/**
 * Bundles the client in a fresh worker of this process and ends it; resolves with the script. The worker is a blob:
 * module, because Deno checks read permission for a worker's main module file and the server may read only its data
 * directory. The fallback of {@link bundleClient}.
 */
export async function bundleInWorker(): Promise<Uint8Array> {
  const sources = await import("./_sources.ts");
  const bundler = await import("./_esbuild.ts");
  const workerSource = `${bundler.ESBUILD_BROWSER_JS}\n;(${bundlingWorkerMain.toString()})(` +
    `${bundleSources.toString()}, { initialize, build });\n`;
  const url = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("bundling the dashboard timed out")), BUNDLE_TIMEOUT_MS);
      worker.onmessage = (event: MessageEvent<{ js?: Uint8Array; error?: string }>) => {
        clearTimeout(timer);
        if (event.data.js) resolve(event.data.js);
        else reject(new Error(`bundling the dashboard failed: ${event.data.error}`));
      };
      worker.onerror = (event) => {
        clearTimeout(timer);
        event.preventDefault();
        reject(new Error(`bundling the dashboard failed: ${event.message}`));
      };
      const request: BundleRequest = {
        wasm: bundler.ESBUILD_WASM,
        files: sources.CLIENT_FILES,
        packages: sources.PACKAGES,
      };
      worker.postMessage(request);
    });
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
}

/**
 * Bundles the client in a child process, or in a worker of this process when it may not start one or the child fails
 * (say, a server run with a `node_modules` folder whose packages are not in Deno's cache, which the child reads).
 */
export async function bundleClient(): Promise<Uint8Array> {
  if (!mayStartChild()) {
    warnInProcess(`no --allow-run=${Deno.execPath()} for a bundling process`);
    return await bundleInWorker();
  }
  try {
    return await bundleInChild();
  } catch (error) {
    warnInProcess((error as Error).message);
    return await bundleInWorker();
  }
}

function warnInProcess(why: string): void {
  console.error(`denvex: bundling the dashboard inside the server (${why}); this holds ~100 MB more for a while`);
}

/** What names a build: the bundler and its settings, and every source (a change to any makes a new bundle). */
const BUNDLER_TAG = "esbuild-wasm@0.28.2 es2022 esm minify jsx=automatic/preact";
/** The cache folder inside the data directory, holding the bundle of the current sources only. */
const CACHE_DIR_NAME = "dashboard";

/** The content hash of the client's sources and the bundler's settings, hex. */
async function sourceHash(): Promise<string> {
  const sources = await import("./_sources.ts");
  const text = JSON.stringify([BUNDLER_TAG, sources.CLIENT_FILES, sources.PACKAGES]);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(digest).slice(0, 16).toHex();
}

/** Makes the assets from a bundled script (and the stylesheet). */
async function assetsOf(js: Uint8Array, buildMs: number): Promise<DashboardAssets> {
  const sources = await import("./_sources.ts");
  const css = new TextEncoder().encode(sources.STYLES);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", concat(js, css)));
  return {
    js,
    jsGzip: await gzip(js),
    css,
    cssGzip: await gzip(css),
    etag: `"${hash.slice(0, 12).toHex()}"`,
    buildMs,
  };
}

/** Where a bundle comes from: {@link bundleClient}, or one of the ways it chooses between. */
export type Bundler = () => Promise<Uint8Array>;

/** Builds the assets (no cache). */
export async function buildDashboardAssets(bundle: Bundler = bundleClient): Promise<DashboardAssets> {
  const startedMs = performance.now();
  const js = await bundle();
  return await assetsOf(js, performance.now() - startedMs);
}

/**
 * The assets, built on first use and kept in memory; with a data directory also kept on disk by source hash
 * (`<data>/dashboard/app-<hash>.js`), so a restarted server serves the dashboard at once instead of bundling again.
 * The cache is an optimisation only: a missing, unreadable or unwritable folder means a build whose bundle is served
 * from memory. A failed build is retried by the next request; at most one build runs at a time.
 */
export class AssetCache {
  readonly #cacheDir: string | null;
  readonly #bundle: Bundler;
  #assets: Promise<DashboardAssets> | null = null;

  constructor(dataDir: string | null = null, bundle: Bundler = bundleClient) {
    this.#cacheDir = dataDir === null ? null : `${dataDir}/${CACHE_DIR_NAME}`;
    this.#bundle = bundle;
  }

  /**
   * Starts loading the assets now (reading the cache, or building when it holds no bundle of the current sources), so
   * the first visit finds them ready. A failure is logged here and retried by the next {@link get}.
   */
  prepare(): void {
    this.get().catch((error) => console.error(`denvex: ${(error as Error).message}`));
  }

  get(): Promise<DashboardAssets> {
    if (this.#assets === null) {
      this.#assets = this.#load();
      this.#assets.catch(() => this.#assets = null);
    }
    return this.#assets;
  }

  async #load(): Promise<DashboardAssets> {
    const startedMs = performance.now();
    const file = this.#cacheDir === null ? null : `${this.#cacheDir}/app-${await sourceHash()}.js`;
    if (file !== null) {
      try {
        return await assetsOf(await Deno.readFile(file), performance.now() - startedMs);
      } catch { /* not cached yet */ }
    }
    const js = await this.#bundle();
    if (file !== null) await this.#store(file, js);
    return await assetsOf(js, performance.now() - startedMs);
  }

  /** Writes the bundle (via a temporary file, so a crash never leaves half a bundle) and drops older ones. */
  async #store(file: string, js: Uint8Array): Promise<void> {
    try {
      await Deno.mkdir(this.#cacheDir!, { recursive: true });
      const temporary = `${file}.${crypto.randomUUID()}.tmp`;
      await Deno.writeFile(temporary, js);
      await Deno.rename(temporary, file);
      for await (const entry of Deno.readDir(this.#cacheDir!)) {
        const path = `${this.#cacheDir}/${entry.name}`;
        if (entry.isFile && path !== file && /^app-.*\.js(\..*\.tmp)?$/.test(entry.name)) {
          await Deno.remove(path).catch(() => {});
        }
      }
    } catch (error) {
      console.error(`denvex: could not cache the dashboard bundle in ${this.#cacheDir}: ${(error as Error).message}`);
    }
  }
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
