/**
 * Search that scales: the server's in-memory full-text and vector indexes, maintained from committed writes
 * (`SearchService`), answering `withSearchIndex` queries at their snapshot and `ctx.vectorSearch` from actions.
 */
export {
  DEFAULT_SEARCH_MEMORY_BYTES,
  type SearchIndexStats,
  SearchService,
  type SearchServiceOptions,
} from "./service.ts";
export { TEXT_SEARCH_OP } from "../database/mod.ts";

/** The action syscall of `ctx.vectorSearch` (convex-compat.md §4.4). */
export const VECTOR_SEARCH_OP = "1.0/actions/vectorSearch";
