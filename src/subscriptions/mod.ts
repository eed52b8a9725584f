/**
 * Subscriptions: cached query results keyed by (function, args, identity), invalidated through an index of read
 * ranges and re-run once per commit that touches them. The sync layer subscribes sockets; HTTP queries read the cache.
 */
export { QueryEntry, type QueryRun, SubscriptionManager, type SubscriptionManagerOptions } from "./manager.ts";
export { canonicalJson, queryKey, type QuerySpec } from "./query_key.ts";
export { keyToHex, ReadRangeIndex } from "./range_index.ts";
