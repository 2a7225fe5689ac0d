import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import type { ConnectionTarget } from '../db/connectionTarget.ts';
import type { Database } from '../db/database.ts';
import type { ResultsCache } from './resultsCache.ts';

const INVALIDATION_CHANNEL = 'lakebase_api_cache_invalidation';
const MAX_BACKOFF_MS = 10_000;

interface Message {
  origin: string;
  prefixes: string[];
}

export interface InvalidationChannel {
  /** This instance's id; its own messages are ignored on receipt. */
  readonly origin: string;
  publish(prefixes: readonly string[]): Promise<void>;
  /** Resolves once LISTEN is active (again). */
  ready(): Promise<void>;
  stats(): { connected: boolean; received: number; reconnects: number };
  close(): Promise<void>;
}

/**
 * Cross-instance cache invalidation over Postgres LISTEN/NOTIFY: no extra infrastructure. One
 * dedicated connection (outside the pool, so it never starves requests) listens; it is re-opened
 * with backoff after a drop, logging in with the current token. It must reach the database
 * directly, not through a transaction-pooling proxy, which does not keep LISTEN sessions.
 */
export function openInvalidationChannel(options: { target: ConnectionTarget; db: Database; cache: ResultsCache; logger: Logger }): InvalidationChannel {
  const { target, db, cache, logger } = options;
  const origin = randomUUID();
  let client: pg.Client | undefined;
  let closed = false;
  let connected = false;
  let received = 0;
  let reconnects = 0;
  let backoff = 250;
  let readyWaiters: Array<() => void> = [];
  let retryTimer: NodeJS.Timeout | undefined;

  const onNotification = (msg: pg.Notification) => {
    if (msg.channel !== INVALIDATION_CHANNEL || !msg.payload) return;
    try {
      const message = JSON.parse(msg.payload) as Message;
      if (message.origin === origin || !Array.isArray(message.prefixes)) return;
      received++;
      cache.invalidate(message.prefixes.filter((p) => typeof p === 'string'));
    } catch {
      logger.warn('Ignored a malformed cache invalidation message');
    }
  };

  const scheduleReconnect = (reason: string) => {
    connected = false;
    if (closed || retryTimer) return;
    logger.warn({ reason, retryInMs: backoff }, 'Cache invalidation listener lost its connection; reconnecting');
    // Anything cached while we were deaf may be stale: start clean once we listen again.
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      reconnects++;
      void connect();
    }, backoff);
    retryTimer.unref();
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  };

  async function connect(): Promise<void> {
    const password = typeof target.password === 'string' ? target.password : await target.password.getPassword().catch(() => '');
    const next = new pg.Client({
      host: target.host,
      port: target.port,
      database: target.database,
      user: target.user,
      password,
      ssl: target.ssl === false ? false : target.ssl,
      application_name: 'lakebase-api-cache-listener',
      keepAlive: true,
    });
    next.on('notification', onNotification);
    next.on('error', (err) => {
      if (client !== next) return;
      void next.end().catch(() => undefined);
      scheduleReconnect(err.message);
    });
    next.on('end', () => {
      if (client === next) scheduleReconnect('connection ended');
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${INVALIDATION_CHANNEL}`);
    } catch (err) {
      next.removeAllListeners('end');
      await next.end().catch(() => undefined);
      scheduleReconnect(err instanceof Error ? err.message : String(err));
      return;
    }
    if (closed) {
      await next.end().catch(() => undefined);
      return;
    }
    const reconnected = reconnects > 0;
    client = next;
    connected = true;
    backoff = 250;
    if (reconnected) cache.clear();
    for (const resolve of readyWaiters) resolve();
    readyWaiters = [];
  }

  void connect();

  return {
    origin,
    async publish(prefixes) {
      await db.query({ text: 'SELECT pg_notify($1, $2)', values: [INVALIDATION_CHANNEL, JSON.stringify({ origin, prefixes })] });
    },
    ready() {
      return connected ? Promise.resolve() : new Promise((resolve) => readyWaiters.push(resolve));
    },
    stats: () => ({ connected, received, reconnects }),
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => undefined);
    },
  };
}
