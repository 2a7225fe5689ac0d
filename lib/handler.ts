import type { Context } from './context.ts';

/**
 * A body already serialised as JSON, e.g. built by Postgres with `json_agg`: the router sends its
 * text as it is instead of calling JSON.stringify. The handler owns its validity.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** What a handler returns; the router serialises `body` as JSON (a JsonText as it is). */
export interface HandlerResult<B = unknown> {
  status?: number;
  body: B;
  headers?: Record<string, string>;
}

export interface HandlerInput<P = Record<string, never>, Q = Record<string, never>, B = undefined> {
  params: P;
  query: Q;
  body: B;
  /**
   * Set by the router on reads whose result only this caller will see: aborted when the caller
   * goes away, so a long statement can stop early. Pass it to `ctx.db.query`. Absent on writes
   * (whether a write happens must not depend on when the client hung up) and on cached reads
   * (their result is shared with other callers and the cache).
   */
  signal?: AbortSignal;
}

/** One operation: validated input in, result out. No HTTP framework, no globals. */
export type Handler<I extends HandlerInput<any, any, any> = HandlerInput<any, any, any>, B = unknown> = (input: I, ctx: Context) => Promise<HandlerResult<B>>;
