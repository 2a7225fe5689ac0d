/**
 * The extensions of the OpenAPI document (openapi/) that the router acts on. Each operation's
 * `operationId` names its handler in `functions/`; `x-cache-ttl-seconds` says how long the results cache may keep its answer (absent/0 = never).
 */
export const CACHE_TTL_EXTENSION = 'x-cache-ttl-seconds';
/**
 * On a write: the cached results it makes stale, as key prefixes (`operationId?` for all of an
 * operation's entries, `operationId?param={param}&` for one entry, filled from the write's input).
 */
export const CACHE_INVALIDATES_EXTENSION = 'x-cache-invalidates';
/**
 * Which server may answer the operation when a read replica is configured: `replica` for reads
 * that tolerate replication lag (a write through this instance still holds the reads it made
 * stale on the primary until the replica has replayed it), `primary` (the default) for writes and
 * point lookups that must see the latest commit.
 */
export const READ_FROM_EXTENSION = 'x-read-from';
export type ReadFrom = 'replica' | 'primary';
