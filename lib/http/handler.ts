import type { Context } from './serviceContext.ts';

/**
 * A body already serialised as JSON, e.g. built by Postgres with `json_agg`: the router sends its
 * text as it is instead of calling JSON.stringify. The handler owns its validity.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** What a handler returns; the router serialises `body` as JSON (a JsonText as it is, a StreamedBody as it comes). */
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
  /**
   * Set by the router on a GET it will neither cache nor buffer (a large export): the handler may
   * answer with a StreamedBody (lib/ground/neutralRequest.ts), sent as it is produced.
   */
  stream?: boolean;
}

/** Any operation's input, as the router hands it over: its shape is the one the operation's schema validated. */
type AnyHandlerInput = HandlerInput<object, object, unknown>;

/**
 * One operation: validated input in, result out. No HTTP framework, no globals.
 *
 * Declared through a method so that its input is compared bivariantly: the handler map holds
 * handlers of many input types under `Handler`, and what proves each one's input is the ajv
 * check of its operation's schema at run time, not the compiler.
 */
export type Handler<I extends AnyHandlerInput = AnyHandlerInput, B = unknown> = {
  handle(input: I, ctx: Context): Promise<HandlerResult<B>>;
}['handle'];
