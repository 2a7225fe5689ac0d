import { tracingChannel } from 'node:diagnostics_channel';

/**
 * What the database layer publishes for whoever observes it (lib/telemetry/channelSpans.ts makes
 * them spans). Node's diagnostics_channel, as undici and Fastify use it: this layer knows no
 * subscriber, and with none listening `hasSubscribers` is false and nothing is published at all.
 * Names follow the `package:subject` shape of undici's channels.
 */

/** One statement: its prepared statement's name (or first keyword) and operation, never its text's values. */
export interface StatementMessage {
  name: string;
  operation: string;
}

export const statementChannel = tracingChannel<unknown, StatementMessage>('lakebase-api:db.query');

export const transactionChannel = tracingChannel<unknown, object>('lakebase-api:db.transaction');

/** A checkout that could not take an idle connection: the wait for one (opening it included). */
export interface PoolAcquireMessage {
  /** Checkouts already waiting when this one started. */
  waiting: number;
}

export const poolAcquireChannel = tracingChannel<unknown, PoolAcquireMessage>('lakebase-api:db.pool.acquire');

/**
 * The operation of a statement for what is published: the prepared statement's name when it has
 * one (`trips_by_ids_json:public.nyc_train_synced`), else its first SQL keyword. Never the text's
 * values: statements are parameterised, and only this summary leaves the layer.
 */
export function statementSummary(statement: { name?: string; text: string }): StatementMessage {
  const operation = /^\s*([A-Za-z]+)/.exec(statement.text)?.[1]?.toUpperCase() ?? 'SQL';
  return { name: statement.name ?? operation, operation };
}
