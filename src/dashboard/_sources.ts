/**
 * The dashboard's client sources, as module imports (Deno's text imports), so they are part of the module graph: the
 * server reads no file outside its data directory to bundle them, `deno compile` embeds them, and the npm ones resolve
 * through the import map like any package (from node_modules or Deno's global cache alike; preact's package exports
 * map `preact`, `preact/hooks` and `preact/jsx-runtime` to their browser ESM). The bundler itself is in `_esbuild.ts`.
 *
 * Every client file is listed here by hand: the bundler resolves imports only among these.
 */
import preact from "preact" with { type: "text" };
import preactHooks from "preact/hooks" with { type: "text" };
import preactJsxRuntime from "preact/jsx-runtime" with { type: "text" };
import main from "./ui/main.tsx" with { type: "text" };
import api from "./ui/api.ts" with { type: "text" };
import values from "./ui/values.tsx" with { type: "text" };
import widgets from "./ui/widgets.tsx" with { type: "text" };
import dataPage from "./ui/data_page.tsx" with { type: "text" };
import overviewPage from "./ui/overview_page.tsx" with { type: "text" };
import functionsPage from "./ui/functions_page.tsx" with { type: "text" };
import logsPage from "./ui/logs_page.tsx" with { type: "text" };
import opsPages from "./ui/ops_pages.tsx" with { type: "text" };
import styles from "./ui/styles.css" with { type: "text" };

/** npm packages the client imports, by specifier, as browser ESM. */
export const PACKAGES: Readonly<Record<string, string>> = {
  "preact": preact,
  "preact/hooks": preactHooks,
  "preact/jsx-runtime": preactJsxRuntime,
};

/** The client's own files, by path relative to `ui/`. */
export const CLIENT_FILES: Readonly<Record<string, string>> = {
  "main.tsx": main,
  "api.ts": api,
  "values.tsx": values,
  "widgets.tsx": widgets,
  "data_page.tsx": dataPage,
  "overview_page.tsx": overviewPage,
  "functions_page.tsx": functionsPage,
  "logs_page.tsx": logsPage,
  "ops_pages.tsx": opsPages,
};

/** The stylesheet, served as it is. */
export const STYLES: string = styles;
