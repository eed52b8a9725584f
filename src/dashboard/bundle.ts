/**
 * Bundles the dashboard's client (Preact + `ui/*.tsx`) with esbuild at run time, once per process, in memory: no build
 * output is committed or written. esbuild runs as wasm (esbuild-wasm), because the server's permissions allow no other
 * executable and no reads outside its data directory; its sources come from `_sources.ts`, which is part of the
 * module graph. The first dashboard request pays the build (measured, `buildMs`); later ones get the bytes kept in
 * memory, gzip-compressed once, and a restarted server reads them from its data directory (see {@link AssetCache}).
 *
 * The build runs in a short-lived worker that is then terminated: esbuild's Go heap grows to what a build needs and a
 * wasm memory never shrinks, so building in the server's own isolate kept ~140 MB of RSS for the life of the process
 * (measured: 81 MB before the first dashboard request, 221 MB after; with the worker the server stays within a few
 * MB of where it was). The worker is a blob: module (esbuild's browser build plus {@link bundlingWorkerMain}),
 * because Deno checks read permission for a worker's main module file and the server may read only its data
 * directory.
 */
import type * as esbuild from "esbuild-wasm/esm/browser.js";

/** The built assets, with what they cost. */
export interface DashboardAssets {
  js: Uint8Array;
  jsGzip: Uint8Array;
  css: Uint8Array;
  cssGzip: Uint8Array;
  /** A content hash of both, for `ETag`. */
  etag: string;
  /** Wall time of loading the sources, starting esbuild in a worker and bundling. */
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
 * The worker's code, serialised with `toString()` into the worker's module after esbuild's browser build, whose
 * `initialize` and `build` it receives: it must use nothing from outside itself. Resolves `ui:` files and the npm
 * packages from the request; anything else is a build error (nothing is fetched or read).
 */
function bundlingWorkerMain(initialize: typeof esbuild.initialize, build: typeof esbuild.build): void {
  const scope = self as unknown as {
    onmessage: ((event: MessageEvent<BundleRequest>) => void) | null;
    postMessage(message: unknown, transfer?: Transferable[]): void;
  };
  scope.onmessage = async (event) => {
    const { wasm, files, packages } = event.data;
    try {
      await initialize({ wasmModule: await WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>), worker: false });
      const result = await build({
        entryPoints: ["ui:main.tsx"],
        bundle: true,
        write: false,
        minify: true,
        format: "esm",
        target: "es2022",
        jsx: "automatic",
        jsxImportSource: "preact",
        logLevel: "silent",
        plugins: [{
          name: "denvex-dashboard-sources",
          setup(builder) {
            builder.onResolve({ filter: /.*/ }, (args) => {
              if (Object.hasOwn(packages, args.path)) return { path: args.path, namespace: "pkg" };
              const name = args.path.replace(/^ui:/, "").replace(/^\.\//, "");
              if (Object.hasOwn(files, name)) return { path: name, namespace: "ui" };
              return { errors: [{ text: `cannot resolve ${args.path} (list it in src/dashboard/_sources.ts)` }] };
            });
            builder.onLoad({ filter: /.*/, namespace: "pkg" }, (args) => ({
              contents: packages[args.path],
              loader: "js",
            }));
            builder.onLoad({ filter: /.*/, namespace: "ui" }, (args) => ({
              contents: files[args.path],
              loader: args.path.endsWith(".tsx") ? "tsx" : "ts",
            }));
          },
        }],
      });
      const js = result.outputFiles[0].contents;
      scope.postMessage({ js }, [js.buffer as ArrayBuffer]);
    } catch (error) {
      scope.postMessage({ error: error instanceof Error ? error.message : String(error) });
    }
  };
}

/** Bundles the client in a fresh worker and ends it; resolves with the script. */
export async function bundleClient(): Promise<Uint8Array> {
  const sources = await import("./_sources.ts");
  const bundler = await import("./_esbuild.ts");
  const workerSource = `${bundler.ESBUILD_BROWSER_JS}\n;(${bundlingWorkerMain.toString()})(initialize, build);\n`;
  const url = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    const js = await new Promise<Uint8Array>((resolve, reject) => {
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
    return js;
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
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

/** Builds the assets in a worker (no cache). */
export async function buildDashboardAssets(): Promise<DashboardAssets> {
  const startedMs = performance.now();
  const js = await bundleClient();
  return await assetsOf(js, performance.now() - startedMs);
}

/**
 * The assets, built on first use and kept in memory; with a data directory also kept on disk by source hash
 * (`<data>/dashboard/app-<hash>.js`), so a restarted server serves the dashboard at once instead of bundling again.
 * The cache is an optimisation only: a missing, unreadable or unwritable folder means a build. A failed build is
 * retried by the next request.
 */
export class AssetCache {
  readonly #cacheDir: string | null;
  #assets: Promise<DashboardAssets> | null = null;

  constructor(dataDir: string | null = null) {
    this.#cacheDir = dataDir === null ? null : `${dataDir}/${CACHE_DIR_NAME}`;
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
    const js = await bundleClient();
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
