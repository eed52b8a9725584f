/**
 * The bundler, as module imports: esbuild-wasm's wasm (bytes), and its browser build as text for the in-process
 * worker fallback (the bundling child imports it as a module). Imported dynamically and only to build, so the server
 * (which builds in a child process) never holds the 14 MB of wasm.
 */
import esbuildWasm from "esbuild-wasm/esbuild.wasm" with { type: "bytes" };
import esbuildBrowserJs from "esbuild-wasm/esm/browser.js" with { type: "text" };

/** The wasm of esbuild-wasm (the same version as the native esbuild in deno.json). */
export const ESBUILD_WASM: Uint8Array = esbuildWasm;

/** esbuild-wasm's browser build (an ES module without imports). */
export const ESBUILD_BROWSER_JS: string = esbuildBrowserJs;
