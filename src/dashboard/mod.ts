/**
 * The admin dashboard, served by the server at `/dashboard` on the API port: a Preact app bundled with esbuild(-wasm)
 * in a short-lived child process when the server starts (cached in the data directory by source hash), a cookie
 * session opened with the admin key, and a JSON API over the backend's own interfaces (tables and documents,
 * functions, logs, schedules, files, environment variables, schema).
 *
 * @module
 */
export { dashboardApp, type DashboardOptions } from "./routes.ts";
export { buildDashboardAssets, type DashboardAssets } from "./bundle.ts";
export type { DashboardBackend } from "./types.ts";
