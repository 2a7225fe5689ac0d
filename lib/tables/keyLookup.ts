import type { Database } from '../db/database.ts';
import type { Config } from '../ground/config.ts';
import { KeyBatcher, serviceBatcherBounds } from '../db/keyBatcher.ts';

/** Most keys in one statement: a batch stays a handful of index probes and one small result. */
const KEY_LOOKUP_BATCH_MAX = 64;

/**
 * A generated get-by-key statement (`npm run add-table`). It reads its keys as text arrays, one per
 * key column (`$1::text[]`, `$2::text[]`, …, unnested WITH ORDINALITY), and answers `n`, the
 * position of the key a row matched, and `item`, the row as JSON text. Postgres itself compares the
 * keys, so a key the caller writes differently from how Postgres prints it (a uuid in capitals, a
 * numeric with trailing zeros) still finds its row, and each row goes back to the caller who asked.
 */
export interface KeyLookup {
  /** The prepared statement's name (the operationId). */
  name: string;
  text: string;
}

/**
 * The row (JSON text) for `key` (the key columns' values, in order), or undefined when there is
 * none. Concurrent lookups on one database handle share statements (lib/db/keyBatcher.ts); each
 * handle has its own batcher, so with LAKEBASE_ACCESS=user a statement only ever carries one
 * user's keys, on that user's connection.
 */
export function lookupByKey(
  ctx: { db: Database; config: { pool: Config['pool'] } },
  lookup: KeyLookup,
  key: readonly unknown[],
  signal?: AbortSignal,
): Promise<string | undefined> {
  const { db } = ctx;
  const batcher = db.batcher(
    lookup.name,
    () =>
      new KeyBatcher<string, string>({
        maxBatch: KEY_LOOKUP_BATCH_MAX,
        ...serviceBatcherBounds(ctx.config.pool, db.pool),
        async load(keys, signal) {
          const columns: unknown[][] = key.map(() => []);
          for (const text of keys) {
            const values = JSON.parse(text) as unknown[];
            for (const [i, column] of columns.entries()) column.push(values[i]);
          }
          const { rows } = await db.query<{ n: number; item: string }>({ name: lookup.name, text: lookup.text, values: columns }, signal ? { signal } : {});
          return rows.map((row) => [keys[row.n - 1] as string, row.item] as const);
        },
      }),
  );
  // A string is a Map key by value: the same key asked twice in one batch is one key.
  return batcher.get(JSON.stringify(key), signal);
}
