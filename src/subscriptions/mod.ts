/**
 * Subscriptions: cached query results keyed by (function, args, identity), invalidated through an index of read
 * ranges and re-run once per commit that touches them. The sync layer subscribes sockets; HTTP queries read the cache.
 *
 * @module
 */
export {
  MAX_QUERY_CACHE_BYTES,
  MAX_UNSUBSCRIBED_CACHE_BYTES,
  MAX_UNSUBSCRIBED_ENTRY_BYTES,
  QueryCacheFullError,
  QueryEntry,
  type QueryRun,
  SubscriptionManager,
  type SubscriptionManagerOptions,
} from "./manager.ts";
export {
  canonicalJson,
  MAX_PLAIN_KEY_CHARS,
  type QueryKey,
  queryKey,
  queryKeyOf,
  type QuerySpec,
} from "./query_key.ts";
export { keyToByteText, keyToHex, ReadRangeIndex } from "./range_index.ts";
