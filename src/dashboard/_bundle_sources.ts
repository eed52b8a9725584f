/**
 * The one esbuild call that bundles the dashboard's client, shared by the two places a build runs: the bundling child
 * process (`build_child.ts`, the usual one) and the in-process worker it falls back to (`bundle.ts`).
 */
import type * as esbuild from "esbuild-wasm/esm/browser.js";

/** The part of esbuild-wasm's API a build uses. */
export interface Esbuild {
  initialize: typeof esbuild.initialize;
  build: typeof esbuild.build;
}

/**
 * Starts esbuild from its wasm and bundles `ui:main.tsx` from `files` (the client's own sources, by path relative to
 * `ui/`) and `packages` (npm packages by specifier, as browser ESM). Nothing is read or fetched: anything else is a
 * build error.
 *
 * Self-contained on purpose (no reference to anything outside its body): the worker fallback serialises it with
 * `toString()` into the worker's source.
 */
export async function bundleSources(
  api: Esbuild,
  wasm: Uint8Array,
  files: Readonly<Record<string, string>>,
  packages: Readonly<Record<string, string>>,
): Promise<Uint8Array> {
  await api.initialize({ wasmModule: await WebAssembly.compile(wasm as Uint8Array<ArrayBuffer>), worker: false });
  const result = await api.build({
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
  return result.outputFiles[0].contents;
}
