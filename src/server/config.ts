/**
 * The command line: parsing and validation, with no I/O. Everything wrong with the flags is a {@link UsageError},
 * raised before the server opens a file or a socket, so `main.ts` can print one line and exit with code 2.
 */
import { DenvexError } from "../errors/mod.ts";
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import type { S3Options } from "../storage/mod.ts";
import { parseIp } from "../runtime/mod.ts";
import { BackupConfigError, type BackupOptions, parseBackupFlags, parseDuration } from "../snapshot/mod.ts";
import { DEFAULT_SEARCH_MEMORY_BYTES } from "../search/mod.ts";

/** Default API port (Convex's `convex dev` local backend uses the same). */
export const DEFAULT_API_PORT = 3210;
/** Default HTTP-actions ("site") port. */
export const DEFAULT_SITE_PORT = 3211;
/** Default listen address: loopback, like other dev servers; the container image passes `--host 0.0.0.0`. */
export const DEFAULT_HOST = "127.0.0.1";
/** Default data directory, relative to the working directory (the launcher grants it when --data is absent). */
export { DEFAULT_DATA_DIR } from "./defaults.ts";
import { DEFAULT_DATA_DIR } from "./defaults.ts";
/** Default instance name: the part of the admin key before `|`. */
export const DEFAULT_INSTANCE_NAME = "denvex";
/** Environment variable that supplies the admin key (never a flag: flags show up in `ps` and task logs). */
export const ADMIN_KEY_ENV = "DENVEX_ADMIN_KEY";
/** Environment variable that may hold the whole PostgreSQL URL, password included (in place of `--db`). */
export const DB_URL_ENV = "DENVEX_DB_URL";
/** Environment variables holding the S3 credentials (never flags: flags show up in `ps`). */
export const S3_ACCESS_KEY_ID_ENV = "DENVEX_S3_ACCESS_KEY_ID";
export const S3_SECRET_ACCESS_KEY_ENV = "DENVEX_S3_SECRET_ACCESS_KEY";
/** Default S3 region (what most S3-compatible servers expect when they ignore regions). */
export const DEFAULT_S3_REGION = "us-east-1";
/** Default `--action-timeout`: Convex's 10 minutes per action (isolate and node). */
export const DEFAULT_ACTION_TIMEOUT_MS = 10 * 60 * 1000;
/** Bounds of `--action-timeout` (a timer cannot exceed about 24 days; a day is already far beyond Convex's). */
const MIB = 1024 * 1024;
/** `--search-memory` when not given, in MiB (the search service's default). */
const DEFAULT_SEARCH_MEMORY_MIB = DEFAULT_SEARCH_MEMORY_BYTES / MIB;
/** The largest `--search-memory`: 1 TiB. */
const MAX_SEARCH_MEMORY_MIB = 1024 * 1024;
const MIN_ACTION_TIMEOUT_MS = 1_000;
const MAX_ACTION_TIMEOUT_MS = 24 * 60 * 60 * 1000;

/** Where the documents live. */
export type DatabaseConfig = { kind: "sqlite" } | { kind: "postgres" | "mysql"; url: string };

/**
 * An admin key supplied from outside: the key itself (from the environment) or the file that holds it (read when
 * the server starts). When absent the server uses (or generates) the one in the data dir.
 */
export type SuppliedAdminKey = { source: "env"; key: string } | { source: "file"; path: string };

/** Everything `serve` needs, validated. */
export interface ServeConfig {
  host: string;
  /** 0 lets the OS choose a free port; the server prints the one it got. */
  apiPort: number;
  sitePort: number;
  /** As given (relative paths are resolved against the working directory when the server starts). */
  dataDir: string;
  database: DatabaseConfig;
  instanceName: string;
  adminKey: SuppliedAdminKey | null;
  /** Where file storage blobs go: null for the data directory, else an S3 bucket. */
  s3: S3Options | null;
  /** `--action-allow-host` values: hosts (names or IP literals) actions may reach although they are private. */
  actionAllowHosts: string[];
  /** `--log-format`: `text` (default) or `json`, one object per line. */
  logFormat: "text" | "json";
  /** `--backup-every` / `--backup-dir` / `--backup-keep`: scheduled snapshot ZIPs, or null for none. */
  backup: BackupOptions | null;
  /** `--node-packages`: "off" refuses pushes whose `"use node"` code names external packages to install. */
  nodePackages: "auto" | "off";
  /** `--action-timeout`: how long one action (isolate or node) may run before it fails with a timeout. */
  actionTimeoutMs: number;
  /** Pin each transaction runner to one CPU (Linux, with `taskset`): on unless `--no-pin-runners`. */
  pinRunners: boolean;
  /** `--search-memory`: bytes the in-memory text and vector indexes may hold together. */
  searchMemoryBytes: number;
}

/** One parsed invocation. */
export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "serve"; config: ServeConfig }
  | { kind: "admin-key"; dataDir: string }
  /** `restore <zip>` with serve's flags naming the data directory, database and bucket to restore into. */
  | { kind: "restore"; zipPath: string; config: ServeConfig }
  /** Internal: a function runner process. Its arguments belong to the runtime and are passed through untouched. */
  | { kind: "runner"; args: string[] }
  /**
   * Internal to the tasks: `start <command line>` runs the command line in a server process granted what its flags
   * name (src/server/launcher.ts); `dev` also restarts it on source changes.
   */
  | { kind: "launch"; args: string[]; watch: boolean };

/** A mistake in the command line or configuration. Its message is one line, meant for the user. */
export class UsageError extends DenvexError {
  constructor(message: string) {
    super("BadUsage", message, { httpStatus: 400 });
    this.name = "UsageError";
  }
}

/** The text `--help` prints. */
export const USAGE = `denvex: a Convex-compatible backend (reactive document database + TypeScript functions)

Usage:
  denvex [serve] [flags]        start the server (the default command)
  denvex admin-key [--data DIR] print the admin key stored in the data directory
  denvex restore ZIP [flags]    replace the data of a stopped deployment (serve's --data/--db/--s3-* flags)
                                with a backup or \`npx convex export\` ZIP
  denvex --help | --version

Flags of serve:
  --port PORT            API port: HTTP API, sync, admin, dashboard (default ${DEFAULT_API_PORT}; 0 = any free port)
  --site-port PORT       HTTP actions port (default ${DEFAULT_SITE_PORT}; 0 = any free port)
  --host ADDRESS         address to listen on (default ${DEFAULT_HOST}; 0.0.0.0 = every interface)
  --data DIR             data directory: SQLite database, files, admin key (default ${DEFAULT_DATA_DIR})
  --db sqlite|URL        sqlite (default, inside the data directory), postgres://user@host:port/db with the
                         password in env PGPASSWORD, or mysql://user@host:port/db (MySQL 8 / MariaDB) with
                         the password in env MYSQL_PWD (or the whole URL in env ${DB_URL_ENV} instead of --db)
  --admin-key-file PATH  file holding the admin key, <instance-name>|<secret> (default: env ${ADMIN_KEY_ENV},
                         else the key stored in the data directory, generated and printed on first start);
                         never pass a key itself as a flag: the process list and logs would show it
  --instance-name NAME   instance name used for a generated admin key (default ${DEFAULT_INSTANCE_NAME})
  --s3-endpoint URL      keep file storage blobs in an S3-compatible bucket at this endpoint (path-style
                         URLs, <endpoint>/<bucket>/<key>) instead of the data directory; needs --s3-bucket
                         and env ${S3_ACCESS_KEY_ID_ENV}, ${S3_SECRET_ACCESS_KEY_ENV}
  --s3-bucket NAME       the bucket (dedicate it to this deployment)
  --s3-region REGION     region used for signing (default ${DEFAULT_S3_REGION})
  --log-format text|json text (default), or json: one JSON object per line, with the request IDs that errors
                         returned to clients carry
  --action-allow-host HOST
                         let actions reach HOST (a name or IP address; repeatable) although it is on loopback
                         or a private network; the database port and the server's ports stay closed on it
  --backup-every DURATION
                         write a snapshot ZIP of all data and files every DURATION (30m, 6h, 1d) while serving
  --backup-dir DIR       where backups go (default <data>/backups)
  --backup-keep N        backups kept, the oldest deleted first (default 7)
  --node-packages auto|off
                         off: refuse pushes whose "use node" code lists convex.json node.externalPackages
                         (nothing is installed from npm at push time); default auto installs them
  --action-timeout DURATION
                         how long one action (isolate or "use node") may run before it fails with Convex's
                         timeout error: 1s to 1d, e.g. 30s, 2m, 1h (default 10m, Convex's limit)
  --no-pin-runners       let the scheduler move the server and its query/mutation runner processes between
                         CPUs; by default the server takes one CPU and the runners the others, one each (Linux,
                         with taskset), which takes less CPU per call
  --search-memory MIB    memory the text and vector search indexes may hold together, in MiB (default
                         ${DEFAULT_SEARCH_MEMORY_MIB}); an index that does not fit is dropped: its text searches scan
                         the table, its vector searches fail

From a checkout: deno task start [flags]. Deploy code with
  CONVEX_SELF_HOSTED_URL=http://127.0.0.1:${DEFAULT_API_PORT} CONVEX_SELF_HOSTED_ADMIN_KEY=<key> npx convex deploy`;

const SERVE_OPTIONS = {
  port: { type: "string" },
  "site-port": { type: "string" },
  host: { type: "string" },
  data: { type: "string" },
  db: { type: "string" },
  "admin-key": { type: "string" },
  "admin-key-file": { type: "string" },
  "instance-name": { type: "string" },
  "s3-endpoint": { type: "string" },
  "s3-bucket": { type: "string" },
  "s3-region": { type: "string" },
  "action-allow-host": { type: "string", multiple: true },
  "log-format": { type: "string" },
  "backup-every": { type: "string" },
  "backup-dir": { type: "string" },
  "backup-keep": { type: "string" },
  "node-packages": { type: "string" },
  "action-timeout": { type: "string" },
  // Accepted for the command lines of earlier versions, where pinning was opt-in; it is the default now.
  "pin-runners": { type: "boolean" },
  "no-pin-runners": { type: "boolean" },
  "search-memory": { type: "string" },
  help: { type: "boolean", short: "h" },
  // Accepted here too because `deno task start --version` arrives as `serve --version`.
  version: { type: "boolean", short: "V" },
} as const satisfies ParseArgsOptionsConfig;

const ADMIN_KEY_OPTIONS = {
  data: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

const TOP_LEVEL_OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const satisfies ParseArgsOptionsConfig;

/** A DNS host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters. */
const HOST_NAME_PATTERN =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
/** Letters, digits, `-` and `_`: the name is the admin key's prefix and must never contain `|`. */
const INSTANCE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** `<instance-name>|<secret>`, the shape the Convex CLI and dashboard expect; no whitespace anywhere. */
const ADMIN_KEY_PATTERN = /^[A-Za-z0-9_-]+\|[\x21-\x7e]+$/;
const ADMIN_KEY_MAX_LENGTH = 1024;

/**
 * Parses `args` (without the program name). `readEnv` is consulted only for `serve`, so other commands run
 * without environment permissions. Throws {@link UsageError}.
 */
export function parseCommandLine(
  args: readonly string[],
  readEnv: (name: string) => string | undefined,
): Command {
  const [first, ...rest] = args;
  switch (first) {
    case "serve":
      return parseServe(rest, readEnv);
    case "admin-key":
      return parseAdminKeyCommand(rest);
    case "runner":
      return { kind: "runner", args: rest };
    case "start":
    case "dev":
      return { kind: "launch", args: rest, watch: first === "dev" };
    case "restore":
      return parseRestore(rest, readEnv);
    case undefined:
      return parseServe([], readEnv);
  }
  if (!first.startsWith("-")) throw new UsageError(`unknown command '${first}' (see --help)`);
  // Top-level --help/--version; any other flag belongs to the default command, serve.
  const topLevel = tryParse(args, TOP_LEVEL_OPTIONS);
  if (topLevel?.help) return { kind: "help" };
  if (topLevel?.version) return { kind: "version" };
  return parseServe(args, readEnv);
}

function parseServe(args: readonly string[], readEnv: (name: string) => string | undefined): Command {
  const values = parseOrThrow(args, SERVE_OPTIONS);
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  const apiPort = parsePort("--port", values.port, DEFAULT_API_PORT);
  const sitePort = parsePort("--site-port", values["site-port"], DEFAULT_SITE_PORT);
  if (apiPort !== 0 && apiPort === sitePort) throw new UsageError(`--port and --site-port must differ (${apiPort})`);
  const instanceName = values["instance-name"] ?? DEFAULT_INSTANCE_NAME;
  if (!INSTANCE_NAME_PATTERN.test(instanceName)) {
    throw new UsageError("--instance-name must be 1-64 letters, digits, '-' or '_', starting with a letter or digit");
  }
  return {
    kind: "serve",
    config: {
      host: parseHost(values.host),
      apiPort,
      sitePort,
      dataDir: parseDataDir(values.data),
      database: parseDatabase(values.db, readEnv),
      instanceName,
      adminKey: suppliedAdminKey(values["admin-key"], values["admin-key-file"], readEnv),
      s3: parseS3(values["s3-endpoint"], values["s3-bucket"], values["s3-region"], readEnv),
      actionAllowHosts: (values["action-allow-host"] ?? []).map(parseAllowHost),
      logFormat: parseLogFormat(values["log-format"]),
      backup: parseBackup(values["backup-every"], values["backup-dir"], values["backup-keep"]),
      nodePackages: parseNodePackages(values["node-packages"]),
      actionTimeoutMs: parseActionTimeout(values["action-timeout"]),
      pinRunners: parsePinRunners(values["pin-runners"] === true, values["no-pin-runners"] === true),
      searchMemoryBytes: parseSearchMemory(values["search-memory"]),
    },
  };
}

/** `restore <zip> [serve's flags]`: the flags name where to restore, as they name what to serve. */
function parseRestore(args: readonly string[], readEnv: (name: string) => string | undefined): Command {
  const [zipPath, ...flags] = args;
  if (zipPath === undefined || zipPath.startsWith("-")) throw new UsageError("restore needs the ZIP file first");
  const serve = parseServe(flags, readEnv);
  return serve.kind === "serve" ? { kind: "restore", zipPath, config: serve.config } : serve;
}

function parseNodePackages(text: string | undefined): "auto" | "off" {
  if (text === undefined || text === "auto" || text === "off") return text ?? "auto";
  throw new UsageError(`--node-packages must be auto or off, got '${text}'`);
}

/** `--search-memory`: whole MiB, from 1 MiB to 1 TiB. */
function parseSearchMemory(text: string | undefined): number {
  if (text === undefined) return DEFAULT_SEARCH_MEMORY_MIB * MIB;
  const mib = /^[0-9]{1,7}$/.test(text) ? Number(text) : NaN;
  if (!(mib >= 1 && mib <= MAX_SEARCH_MEMORY_MIB)) {
    throw new UsageError(
      `--search-memory must be a whole number of MiB from 1 to ${MAX_SEARCH_MEMORY_MIB}, got '${text}'`,
    );
  }
  return mib * MIB;
}

function parsePinRunners(pin: boolean, noPin: boolean): boolean {
  if (pin && noPin) throw new UsageError("--pin-runners and --no-pin-runners contradict each other");
  return !noPin;
}

function parseActionTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_ACTION_TIMEOUT_MS;
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(text);
  } catch (error) {
    if (error instanceof BackupConfigError) throw new UsageError(`--action-timeout: ${error.message}`);
    throw error;
  }
  if (timeoutMs < MIN_ACTION_TIMEOUT_MS || timeoutMs > MAX_ACTION_TIMEOUT_MS) {
    throw new UsageError(`--action-timeout must be between 1s and 1d, got '${text}'`);
  }
  return timeoutMs;
}

function parseBackup(every?: string, dir?: string, keep?: string): BackupOptions | null {
  try {
    return parseBackupFlags(every, dir, keep);
  } catch (error) {
    if (error instanceof BackupConfigError) throw new UsageError(error.message);
    throw error;
  }
}

function parseLogFormat(text: string | undefined): "text" | "json" {
  if (text === undefined || text === "text" || text === "json") return text ?? "text";
  throw new UsageError(`--log-format must be 'text' or 'json', got '${text}'`);
}

function parseAdminKeyCommand(args: readonly string[]): Command {
  const values = parseOrThrow(args, ADMIN_KEY_OPTIONS);
  if (values.help) return { kind: "help" };
  return { kind: "admin-key", dataDir: parseDataDir(values.data) };
}

function parsePort(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`${flag} must be a port number 0-65535, got '${text}'`);
  return port;
}

function parseHost(text: string | undefined): string {
  if (text === undefined) return DEFAULT_HOST;
  if (!/^[A-Za-z0-9.:-]+$/.test(text) && !/^\[[0-9A-Fa-f:.]+\]$/.test(text)) {
    throw new UsageError(`--host must be a host name or IP address, got '${text}'`);
  }
  return text.startsWith("[") ? text.slice(1, -1) : text;
}

/** A host name (`db.internal`) or an IP literal (`10.0.0.5`, `fd00::5`, `[fd00::5]`); no port, no CIDR. */
function parseAllowHost(text: string): string {
  if (parseIp(text) !== null) return text.startsWith("[") ? text.slice(1, -1) : text;
  if (!HOST_NAME_PATTERN.test(text)) {
    throw new UsageError(`--action-allow-host must be a host name or IP address (no port), got '${text}'`);
  }
  return text;
}

function parseDataDir(text: string | undefined): string {
  if (text === undefined) return DEFAULT_DATA_DIR;
  // Deno permission flags are comma-separated lists, so a comma would make the directory impossible to grant.
  if (text.trim() === "" || text.includes(",") || text.includes("\0")) {
    throw new UsageError("--data must be a directory path without commas");
  }
  return text;
}

/**
 * `--db`, else env DENVEX_DB_URL. A password is refused on the command line (every user sees it in `ps`, and `deno
 * task` echoes it into logs); the message says where to put it instead, without repeating it.
 */
function parseDatabase(flag: string | undefined, readEnv: (name: string) => string | undefined): DatabaseConfig {
  if (flag === undefined) {
    const fromEnv = readGrantedEnv(DB_URL_ENV, readEnv);
    if (fromEnv === undefined || fromEnv === "") return { kind: "sqlite" };
    const url = databaseUrl(DB_URL_ENV, fromEnv);
    return { kind: databaseKind(url), url: normalizedUrl(url, fromEnv) };
  }
  if (flag === "sqlite") return { kind: "sqlite" };
  const url = databaseUrl("--db", flag);
  const kind = databaseKind(url);
  if (url.password !== "") {
    throw new UsageError(
      `--db must not contain a password (the process list and logs would show it): set env ` +
        `${kind === "mysql" ? "MYSQL_PWD" : "PGPASSWORD"}, or put the whole URL in env ${DB_URL_ENV} instead of --db`,
    );
  }
  return { kind, url: normalizedUrl(url, flag) };
}

function databaseKind(url: URL): "postgres" | "mysql" {
  return url.protocol === "mysql:" ? "mysql" : "postgres";
}

/** The MySQL default port, written into the URL so runners' network grants and the action policy name it. */
const MYSQL_DEFAULT_PORT = "3306";

/** `text` as given, except that a mysql:// URL without a port gets the default port spelled out. */
function normalizedUrl(url: URL, text: string): string {
  if (url.protocol !== "mysql:" || url.port !== "") return text;
  url.port = MYSQL_DEFAULT_PORT;
  return url.href;
}

/** Parses a PostgreSQL or MySQL URL given by `what`; the error never repeats the text, which may hold a password. */
function databaseUrl(what: string, text: string): URL {
  if (/^mysql:\/\//.test(text)) {
    const bad = new UsageError(
      `${what} must be 'sqlite', postgres://user@host:port/database or mysql://user@host:port/database`,
    );
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw bad;
    }
    if (url.hostname === "" || !/^\/[^/]+$/.test(url.pathname)) throw bad;
    return url;
  }
  return postgresUrl(what, text);
}

/** Parses a PostgreSQL URL given by `what`; the error never repeats the text, which may hold a password. */
function postgresUrl(what: string, text: string): URL {
  const bad = new UsageError(`${what} must be 'sqlite', postgres://user@host:port/database or mysql://...`);
  if (!/^postgres(ql)?:\/\//.test(text)) throw bad;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad;
  }
  if (url.hostname === "" || url.pathname.length <= 1) throw bad;
  return url;
}

/** S3 bucket names: 3-63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit. */
const S3_BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const S3_REGION_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The S3 flags: all absent (blobs in the data directory), or endpoint and bucket with credentials in env. */
function parseS3(
  endpoint: string | undefined,
  bucket: string | undefined,
  region: string | undefined,
  readEnv: (name: string) => string | undefined,
): S3Options | null {
  if (endpoint === undefined && bucket === undefined) {
    if (region !== undefined) throw new UsageError("--s3-region needs --s3-endpoint and --s3-bucket");
    return null;
  }
  if (endpoint === undefined) throw new UsageError("--s3-bucket needs --s3-endpoint");
  if (bucket === undefined) throw new UsageError("--s3-endpoint needs --s3-bucket");
  let url: URL | null = null;
  try {
    url = new URL(endpoint);
  } catch { /* reported below */ }
  if (
    url === null || (url.protocol !== "http:" && url.protocol !== "https:") || url.username !== "" ||
    url.password !== "" || url.search !== "" || url.hash !== ""
  ) {
    throw new UsageError(`--s3-endpoint must be an http(s) URL without credentials or query, got '${endpoint}'`);
  }
  if (!S3_BUCKET_PATTERN.test(bucket)) {
    throw new UsageError("--s3-bucket must be 3-63 lowercase letters, digits, '.' or '-'");
  }
  const s3Region = region ?? DEFAULT_S3_REGION;
  if (!S3_REGION_PATTERN.test(s3Region)) throw new UsageError(`--s3-region must look like us-east-1, got '${region}'`);
  // Read only when S3 is configured, so a server started without S3 needs no grant for these variables.
  const accessKeyId = readGrantedEnv(S3_ACCESS_KEY_ID_ENV, readEnv) ?? "";
  const secretAccessKey = readGrantedEnv(S3_SECRET_ACCESS_KEY_ENV, readEnv) ?? "";
  if (accessKeyId === "" || secretAccessKey === "") {
    throw new UsageError(
      `--s3-endpoint needs the credentials in env ${S3_ACCESS_KEY_ID_ENV} and ${S3_SECRET_ACCESS_KEY_ENV}`,
    );
  }
  return { endpoint: url.href.replace(/\/+$/, ""), bucket, region: s3Region, accessKeyId, secretAccessKey };
}

/** `readEnv(name)`, with a missing `--allow-env` grant reported as a usage error rather than a crash. */
function readGrantedEnv(name: string, readEnv: (name: string) => string | undefined): string | undefined {
  try {
    return readEnv(name);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`cannot read env ${name}: add it to --allow-env`);
    }
    throw error;
  }
}

/**
 * The admin key from `--admin-key-file`, else env DENVEX_ADMIN_KEY. `--admin-key KEY` is refused: the process list
 * and `deno task`'s echo of its command line would show the key (the message does not repeat it).
 */
function suppliedAdminKey(
  flag: string | undefined,
  file: string | undefined,
  readEnv: (name: string) => string | undefined,
): SuppliedAdminKey | null {
  if (flag !== undefined) {
    throw new UsageError(
      `--admin-key is refused (the process list and logs would show the key): set env ${ADMIN_KEY_ENV}, ` +
        `or pass a file holding it with --admin-key-file PATH`,
    );
  }
  if (file !== undefined) {
    if (file.trim() === "" || file.includes(",") || file.includes("\0")) {
      throw new UsageError("--admin-key-file must be a file path without commas");
    }
    return { source: "file", path: file };
  }
  const fromEnv = readEnv(ADMIN_KEY_ENV);
  // An empty variable counts as unset: `DENVEX_ADMIN_KEY= deno task start` should not be an error.
  if (fromEnv === undefined || fromEnv === "") return null;
  return { key: validAdminKey(ADMIN_KEY_ENV, fromEnv), source: "env" };
}

/** True if `key` has the shape of an admin key: `<instance-name>|<secret>`, printable, no whitespace. */
export function isValidAdminKey(key: string): boolean {
  return key.length <= ADMIN_KEY_MAX_LENGTH && ADMIN_KEY_PATTERN.test(key);
}

/** Returns `key` if it has the shape of an admin key; else a usage error naming `what` supplied it. */
export function validAdminKey(what: string, key: string): string {
  if (!isValidAdminKey(key)) {
    throw new UsageError(`${what} must look like <instance-name>|<secret> (printable, no spaces)`);
  }
  return key;
}

type ParsedValues<T extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ options: T; strict: true; allowPositionals: false }>
>["values"];

function parseOrThrow<T extends ParseArgsOptionsConfig>(args: readonly string[], options: T): ParsedValues<T> {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values as ParsedValues<T>;
  } catch (error) {
    // node:util messages can span lines; keep the first, which names the flag.
    const firstLine = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new UsageError(`${lowerFirst(firstLine)} (see --help)`);
  }
}

/** Parses only to find top-level flags; null when `args` holds flags of a command instead. */
function tryParse<T extends ParseArgsOptionsConfig>(args: readonly string[], options: T): ParsedValues<T> | null {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values as ParsedValues<T>;
  } catch {
    return null;
  }
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
