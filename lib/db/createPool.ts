import pg from 'pg';
import type { Config } from '../config.ts';
import type { ConnectionTarget } from './connectionTarget.ts';

const INT8_OID = 20;
/**
 * How much longer than the statement timeout the client waits for an answer. The server cancels at
 * the statement timeout and normally answers first (57014 → 504); only a server that stopped
 * answering altogether (hung, or cut off by the network with the socket left open) lets the
 * client's own timer fire, which drops that connection.
 */
export const QUERY_TIMEOUT_GRACE_MS = 1000;
const TIMESTAMP_OID = 1114;

/**
 * Wire types follow the documented responses: bigint and count(*) as JSON integers (ids stay far
 * below 2^53), `timestamp without time zone` as the stored value in ISO 8601 without an offset,
 * never converted through the process's time zone.
 */
const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8_OID) return (value: string) => Number(value);
    if (oid === TIMESTAMP_OID) return (value: string) => value.replace(' ', 'T');
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

export interface PoolObserver {
  /** A new connection could not be opened (refused, timed out, login rejected). */
  onConnectError?(err: Error): void;
}

/**
 * pg-pool reports a failed connect only to the caller waiting for it; counting failures (metrics)
 * needs a hook on the client itself, given to the pool as its `Client` class.
 */
function observedClient(observer: PoolObserver): typeof pg.Client {
  const { onConnectError } = observer;
  if (!onConnectError) return pg.Client;
  type Callback = (err: Error | null, client?: pg.Client) => void;
  return class ObservedClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: Callback): void;
    override connect(callback?: Callback): Promise<pg.Client> | void {
      if (!callback) return super.connect().catch((err: Error) => { onConnectError(err); throw err; });
      super.connect(((err: Error | null, client?: pg.Client) => {
        if (err) onConnectError(err);
        callback(err, client);
      }) as (err: Error) => void);
    }
  };
}

/**
 * node-postgres' pool already expresses the settings: `min` stays open, `max` = size + overflow,
 * the overflow closes when idle, `connectionTimeoutMillis` bounds the wait for a connection, and a
 * function `password` makes every new connection log in with the current token.
 */
export function createPool(target: ConnectionTarget, config: Config, applicationName = 'lakebase-api', observer: PoolObserver = {}): pg.Pool {
  const { password } = target;
  return new pg.Pool({
    Client: observedClient(observer),
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    password: typeof password === 'string' ? password : () => password.getPassword(),
    ssl: target.ssl === false ? false : target.ssl,
    min: config.pool.size,
    max: config.pool.size + config.pool.maxOverflow,
    idleTimeoutMillis: config.pool.idleTimeoutSeconds * 1000,
    connectionTimeoutMillis: Math.round(config.pool.timeoutSeconds * 1000),
    maxLifetimeSeconds: config.pool.maxLifetimeSeconds,
    statement_timeout: Math.round(config.pool.commandTimeoutSeconds * 1000),
    query_timeout: Math.round(config.pool.commandTimeoutSeconds * 1000) + QUERY_TIMEOUT_GRACE_MS,
    application_name: applicationName,
    keepAlive: true,
    types: typeParsers,
  });
}

/** pg-pool keeps `min` connections once opened but does not open them up front: do it at start-up. */
export async function warmPool(pool: pg.Pool, count: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: count }, () => pool.connect()));
  for (const client of clients) client.release();
}
