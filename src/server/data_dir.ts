/**
 * The data directory: resolving it, checking up front that the process may use it, and creating it. The start task's
 * launcher grants the directory `--data` names; a server run by hand without that grant must fail with a clear
 * message before anything is opened, not with a permission error from deep inside SQLite.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import { resolve } from "node:path";
import { UsageError } from "./config.ts";

/** The absolute form of a `--data` value. */
export function resolveDataDir(dataDir: string): string {
  return resolve(Deno.cwd(), dataDir);
}

/**
 * Throws a {@link UsageError} unless this process holds every kind of `access` to `dataDir`. Only queries: a
 * missing grant never prompts.
 */
export function assertDataDirAccess(dataDir: string, access: readonly ("read" | "write")[]): void {
  const missing = access.filter((name) => Deno.permissions.querySync({ name, path: dataDir }).state !== "granted");
  if (missing.length === 0) return;
  const flags = missing.map((name) => `--allow-${name}=${dataDir}`).join(" ");
  throw new UsageError(
    `no ${missing.join("/")} permission for data directory ${dataDir}: start the server with deno task start ` +
      `(which grants the directory --data names), or give deno run ${flags} (README, "Permissions")`,
  );
}

/**
 * Throws a {@link UsageError} unless this process may list the machine's network interfaces: the network policy of
 * actions keeps the machine's own addresses out of their reach, and without the grant no action could run.
 */
export function assertNetworkInterfacesAccess(): void {
  if (Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" }).state === "granted") return;
  throw new UsageError(
    "no permission to list network interfaces, which the network policy of actions needs: " +
      'run deno run with --allow-sys=networkInterfaces (README, "Permissions")',
  );
}

/** Creates the data directory (owner-only: it holds the admin key) if it does not exist. */
export async function ensureDataDir(dataDir: string): Promise<void> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
}
