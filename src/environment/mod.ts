/**
 * The environment variables denvex reads, in one place (the lowest layer, no imports): the launcher grants exactly
 * {@link SERVER_ENV_NAMES} to the server, runners get the database driver's names, and every child that needs none of
 * the server's secrets (the `deno install` of node packages, the dashboard's bundling process) gets
 * {@link SECRET_ENV_NAMES} blanked. A new variable is added here once, so no list can miss it.
 *
 * @module
 */

/** The server's own secrets: the admin key, a database URL that may carry a password, the S3 credentials. */
const DENVEX_SECRET_ENV_NAMES = [
  "DENVEX_ADMIN_KEY",
  "DENVEX_DB_URL",
  "DENVEX_S3_ACCESS_KEY_ID",
  "DENVEX_S3_SECRET_ACCESS_KEY",
] as const;

/** The variable mysql2 reads a password from (the server takes it from there too, never from `--db`). */
export const MYSQL_ENV_NAMES: readonly string[] = ["MYSQL_PWD"];

/** The `PG*` variables postgres.js reads (platform-notes.md). */
export const POSTGRES_ENV_NAMES: readonly string[] = [
  "PGHOST",
  "PGPORT",
  "PGUSER",
  "PGUSERNAME",
  "PGPASSWORD",
  "PGDATABASE",
  "PGSSL",
  "PGSSLNEGOTIATION",
  "PGIDLE_TIMEOUT",
  "PGCONNECT_TIMEOUT",
  "PGMAX_LIFETIME",
  "PGMAX_PIPELINE",
  "PGBACKOFF",
  "PGKEEP_ALIVE",
  "PGPREPARE",
  "PGDEBUG",
  "PGFETCH_TYPES",
  "PGPUBLICATIONS",
  "PGTARGET_SESSION_ATTRS",
  "PGAPPNAME",
  "PGTARGETSESSIONATTRS",
];

/** Variables holding secrets, blanked in the environment of children that need none of them. */
export const SECRET_ENV_NAMES: readonly string[] = [...DENVEX_SECRET_ENV_NAMES, "PGPASSWORD", ...MYSQL_ENV_NAMES];

/** Every variable the server may read: its settings and secrets, and the database drivers'. */
export const SERVER_ENV_NAMES: readonly string[] = [
  ...DENVEX_SECRET_ENV_NAMES,
  ...POSTGRES_ENV_NAMES,
  ...MYSQL_ENV_NAMES,
  "DISABLE_METRICS_ENDPOINT",
];
