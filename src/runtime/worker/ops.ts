/**
 * Which syscalls go where (convex-compat.md §4.4). Lists rather than "forward everything" so an op nobody implements
 * fails with the official `Unknown async operation` text instead of whatever the receiver happens to say.
 */

import { STORAGE_ACTION_OPS, STORAGE_TRANSACTION_OPS } from "./storage_js.ts";

/** Synchronous syscalls answered by the transaction. */
export const TRANSACTION_SYNC_OPS: ReadonlySet<string> = new Set([
  "1.0/queryStream",
  "1.0/queryCleanup",
  "1.0/db/normalizeId",
  "1.0/getSnapshotTs",
]);

/** Asynchronous syscalls answered by the transaction (queries and mutations). */
export const TRANSACTION_ASYNC_OPS: ReadonlySet<string> = new Set([
  "1.0/get",
  "1.0/insert",
  "1.0/shallowMerge",
  "1.0/replace",
  "1.0/remove",
  "1.0/queryStreamNext",
  "1.0/queryPage",
  "1.0/count",
  "1.0/getUserIdentity",
  "1.0/getTransactionMetrics",
  "1.0/schedule",
  "1.0/cancel_job",
  ...STORAGE_TRANSACTION_OPS,
]);

/** Asynchronous syscalls of actions that the server answers (over postMessage, several may be in flight). */
export const ACTION_SERVER_OPS: ReadonlySet<string> = new Set([
  "1.0/actions/query",
  "1.0/actions/mutation",
  "1.0/actions/action",
  "1.0/getUserIdentity",
  "1.0/createServiceToken",
  "1.0/getServiceUrl",
  "1.0/actions/schedule",
  "1.0/actions/cancel_job",
  "1.0/actions/vectorSearch",
  ...STORAGE_ACTION_OPS,
]);

const UNSUPPORTED_OPS: ReadonlySet<string> = new Set<string>([]);

/** True for the search ops denvex does not implement yet: they fail at once. */
export function isUnsupportedOp(op: string): boolean {
  return UNSUPPORTED_OPS.has(op);
}

/** The error text of an op denvex does not implement yet. */
export function unsupportedMessage(op: string): string {
  return `${op} is not supported yet by denvex`;
}
