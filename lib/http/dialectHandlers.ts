import type { Context } from './serviceContext.ts';
import { type HandlerInput, type HandlerResult, JsonText } from './handler.ts';
import { type DialectQuery, dialectRequest, streamsAnswer } from '../postgrest/dialectInput.ts';
import type { DialectResponse } from '../postgrest/dialectResponse.ts';
import { postgrestRefusal } from '../postgrest/databaseRefusal.ts';
import { readHead } from '../postgrest/dialectResponse.ts';
import { keyLookupSql, keyOfSingleRead } from '../postgrest/keyRead.ts';
import type { ParsedRequest } from '../postgrest/parseQuery.ts';
import { parseForTable, readParsed, type WriteMethod, writeTable } from '../postgrest/serveTable.ts';
import { type StreamedDialectResponse, streamTable } from '../postgrest/streamRead.ts';
import { type KeyLookup, lookupByKey } from '../tables/keyLookup.ts';
import type { PostgrestTable } from '../postgrest/tableShape.ts';

/**
 * What a generated table's PostgREST-dialect handlers do (functions/<read|create|…><Table>.ts): the
 * router hands them the normalised query string and the headers that shape the answer
 * (lib/postgrest/dialectInput.ts); lib/postgrest/ parses, checks, compiles and runs it.
 */
export type DialectInput = HandlerInput<Record<string, never>, DialectQuery, unknown>;

/** Responses differ by these request headers too: a shared cache must key on them. */
const VARY = 'Accept, Prefer, Range';

function handlerResult(response: DialectResponse | StreamedDialectResponse): HandlerResult {
  const headers = { ...response.headers, vary: VARY };
  const { body } = response;
  return { status: response.status, headers, body: body === undefined || typeof body !== 'string' ? body : new JsonText(body) };
}

/** Each table's batched lookup by key, built once from its metadata. */
const keyLookups = new WeakMap<PostgrestTable, KeyLookup>();

function keyLookupFor(table: PostgrestTable): KeyLookup {
  let lookup = keyLookups.get(table);
  if (!lookup) {
    lookup = { name: `pgrst_key_${table.name}`, text: keyLookupSql(table) };
    keyLookups.set(table, lookup);
  }
  return lookup;
}

/**
 * single() by the whole primary key (keyOfSingleRead): the item route's batched lookup answers it,
 * so concurrent ones share one statement; the answer is the general path's (Content-Range 0-0/*, or
 * 406 PGRST116 for no row).
 */
async function readByKey(ctx: Context, table: PostgrestTable, query: ParsedRequest, key: readonly string[], signal?: AbortSignal): Promise<HandlerResult> {
  let item: string | undefined;
  try {
    item = await lookupByKey(ctx, keyLookupFor(table), key, signal);
  } catch (err) {
    throw postgrestRefusal(err);
  }
  return handlerResult({ ...readHead(query, 0, { n: item === undefined ? 0 : 1, total: null }), body: item });
}

/** GET/HEAD of the collection, on the context's database (a replica for a scanning read, the caller's own with LAKEBASE_ACCESS=user). */
export async function readCollection(ctx: Context, table: PostgrestTable, input: DialectInput): Promise<HandlerResult> {
  // DB_MAX_ROWS bounds every table whose file does not set maxRows itself.
  const bounded = table.maxRows === undefined ? { ...table, maxRows: ctx.config.dbMaxRows } : table;
  const request = dialectRequest(input.query);
  const query = parseForTable(bounded, request);
  // A large export streams from a cursor when the router lets it (an uncached GET: see streamsAnswer).
  if (input.stream && streamsAnswer(input.query, bounded.maxRows ?? ctx.config.dbMaxRows)) {
    return handlerResult(await streamTable(ctx.db, bounded, query, request.search, input.signal));
  }
  const key = keyOfSingleRead(bounded, query);
  if (key) return readByKey(ctx, table, query, key, input.signal);
  return handlerResult(await readParsed(ctx.db, bounded, query, request.search, input.signal));
}

/** POST/PATCH/DELETE/PUT of the collection, in one transaction. */
export async function writeCollection(ctx: Context, table: PostgrestTable, method: WriteMethod, input: DialectInput): Promise<HandlerResult> {
  return handlerResult(await writeTable(ctx.db, table, method, dialectRequest(input.query), input.body));
}
