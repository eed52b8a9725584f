/**
 * The deployment's admin key: supplied by flag or environment, or else kept in the data directory, generated on
 * first start. The stored file is created atomically and owner-only, so a crash never leaves half a key and two
 * servers starting at once agree on one key.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import { join } from "node:path";
import { isValidAdminKey, type SuppliedAdminKey, UsageError, validAdminKey } from "./config.ts";

/** The file in the data directory that holds the generated admin key. */
export const ADMIN_KEY_FILE_NAME = "admin-key";

const SECRET_BYTES = 32;

/** Where the key in use came from; the server says so at start. */
export type AdminKeySource = "file" | "env" | "stored" | "generated";

/** An admin key and its origin. */
export interface ResolvedAdminKey {
  key: string;
  source: AdminKeySource;
}

/** A fresh key: `<instanceName>|<64 hex chars>` (32 random bytes). */
export function generateAdminKey(instanceName: string): string {
  const secret = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
  return `${instanceName}|${secret.toHex()}`;
}

/** The path of the stored key inside `dataDir`. */
export function adminKeyPath(dataDir: string): string {
  return join(dataDir, ADMIN_KEY_FILE_NAME);
}

/** The key stored in `dataDir`, or null if none. Throws if the file exists but does not hold a valid key. */
export async function readStoredAdminKey(dataDir: string): Promise<string | null> {
  const path = adminKeyPath(dataDir);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  const key = text.trim();
  // A damaged key file is a startup failure (exit 1), not a usage error: no flag of this invocation caused it.
  if (!isValidAdminKey(key)) throw new Error(`${path} does not hold an admin key of the form <instance-name>|<secret>`);
  return key;
}

/**
 * The key the server uses: the supplied one, else the stored one, else a new one that is stored first. Supplied
 * keys are never written to disk.
 */
export async function resolveAdminKey(
  supplied: SuppliedAdminKey | null,
  dataDir: string,
  instanceName: string,
): Promise<ResolvedAdminKey> {
  if (supplied?.source === "env") return { key: supplied.key, source: "env" };
  if (supplied?.source === "file") return { key: await readAdminKeyFile(supplied.path), source: "file" };
  const stored = await readStoredAdminKey(dataDir);
  if (stored !== null) return { key: stored, source: "stored" };
  const created = await storeNewAdminKey(dataDir, generateAdminKey(instanceName));
  return created ? { key: created, source: "generated" } : { key: await mustReadStored(dataDir), source: "stored" };
}

/**
 * Writes `key` to a temporary file, syncs it, and hard-links it into place: the link fails if another process got
 * there first, so the key file is either absent or complete. Returns null if a key already existed.
 */
async function storeNewAdminKey(dataDir: string, key: string): Promise<string | null> {
  const finalPath = adminKeyPath(dataDir);
  const tempPath = `${finalPath}.${crypto.randomUUID()}.tmp`;
  const file = await Deno.open(tempPath, { write: true, createNew: true, mode: 0o600 });
  try {
    await file.write(new TextEncoder().encode(`${key}\n`));
    await file.sync();
  } finally {
    file.close();
  }
  try {
    await Deno.link(tempPath, finalPath);
    return key;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return null;
    throw error;
  } finally {
    await Deno.remove(tempPath);
  }
}

/**
 * The key in the `--admin-key-file` file. Problems are usage errors (exit 2): the flag named a file this process may
 * not read, or one that holds no key. Messages name the file, never its content.
 */
export async function readAdminKeyFile(path: string): Promise<string> {
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
    throw new UsageError(`no read permission for --admin-key-file ${path}: add it to --allow-read`);
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`cannot read --admin-key-file ${path}: ${error instanceof Error ? error.name : "error"}`);
  }
  return validAdminKey(`the key in --admin-key-file ${path}`, text.trim());
}

async function mustReadStored(dataDir: string): Promise<string> {
  const stored = await readStoredAdminKey(dataDir);
  if (stored === null) throw new Error(`admin key file ${adminKeyPath(dataDir)} vanished while starting`);
  return stored;
}
