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
