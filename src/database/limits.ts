/** Per-transaction limits (Convex's, so apps behave the same; DESIGN.md "Limits"). */
export const TRANSACTION_LIMITS = {
  bytesRead: 16 * 1024 * 1024,
  bytesWritten: 16 * 1024 * 1024,
  documentsRead: 32_000,
  documentsWritten: 16_000,
  indexRanges: 4_096,
} as const;

/** The largest page size `paginate()` accepts. */
export const MAX_PAGE_SIZE = 8_192;
/** The largest batch one `queryStreamNext` call returns. */
export const MAX_STREAM_BATCH = 1_024;
/** Convex's limit on functions one transaction may schedule. */
export const MAX_FUNCTIONS_SCHEDULED = 1_000;
/** Limit on the total size of the args (convex-JSON bytes) one transaction may schedule. */
export const MAX_SCHEDULED_ARGS_BYTES = 8 * 1024 * 1024;
