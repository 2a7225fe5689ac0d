import pg from 'pg';
import type { Config } from '../ground/config.ts';
import { ApiError, Unavailable } from '../errors.ts';
import { poolAcquireChannel } from './databaseChannels.ts';
import { isLoginRefused, markPasswordTakenAt } from './connectWithTokenRetry.ts';
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

type ConnectCallback = (err: Error | null, client?: pg.Client) => void;

/**
 * The pool's client class. Two things pg's own Client does not do:
 *
 * - Resolve the password before opening the socket. pg asks a password function only after it has
 *   connected and sent the startup message; when the function fails (no valid token: the
 *   workspace is down), pg reports the error but leaves that socket open, and the server keeps the
 *   half-open backend until its authentication_timeout (60 s). Under load that fills
 *   max_connections within seconds ("sorry, too many clients already"), for every user of the
 *   database, and outlasts the outage by a minute. With the password in hand first, a token
 *   failure never opens a connection.
 * - Count failed connects (metrics): pg-pool reports them only to the caller waiting.
 * - Mark a refused login (28P01) with when it took its password, for the token retry.
 */
function clientClass(observer: PoolObserver): typeof pg.Client {
  const { onConnectError } = observer;
  return class PasswordFirstClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: ConnectCallback): void;
    override connect(callback?: ConnectCallback): Promise<pg.Client> | undefined {
      let passwordTakenAt: number | undefined;
      const connected = this.resolvePassword()
        .then(() => {
          passwordTakenAt = Date.now();
          // The pool's connection timeout may have ended this client while the token was fetched.
          const state = this as unknown as { _ending?: boolean; connection: { stream: { destroyed?: boolean } } };
          if (state._ending || state.connection.stream.destroyed) throw new Error('Connection terminated due to connection timeout');
          return super.connect();
        })
        .catch((err: Error) => {
          // The token retry needs to know which token was refused: one taken after this moment is newer.
          if (passwordTakenAt !== undefined && isLoginRefused(err)) markPasswordTakenAt(err, passwordTakenAt);
          onConnectError?.(err);
          throw err;
        });
      if (!callback) return connected;
      connected.then(
        () => callback(null, this),
        (err: Error) => callback(err),
      );
      return undefined;
    }

    private async resolvePassword(): Promise<void> {
      const self = this as unknown as { password?: unknown; connectionParameters: { password?: unknown } };
      if (typeof self.password !== 'function') return;
      let password: unknown;
      try {
        password = await (self.password as () => unknown)();
      } catch (err) {
        // A typed refusal (a user's 401/403 in LAKEBASE_ACCESS=user) stands; anything else means no
        // token can be had right now: the workspace is down or refusing, which is an outage (503).
        if (err instanceof ApiError) throw err;
        throw new Unavailable('No valid database credential: the Databricks workspace could not issue a token; retry shortly', { cause: err });
      }
      if (typeof password !== 'string') throw new TypeError('Password must be a string');
      self.password = password;
      self.connectionParameters.password = password;
    }
  };
}

type PoolConnectCallback = (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void;

/**
 * pg.Pool whose checkouts (pool.query's included) that cannot take an idle connection are a
 * published on `poolAcquireChannel` while anyone listens (telemetry makes it a `db.pool.acquire`
 * span): the time a request waited for a connection, opening one (and fetching its token) included.
 * Taking an idle connection costs nothing worth publishing.
 */
class ObservedPool extends pg.Pool {
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: PoolConnectCallback): void;
  override connect(callback?: PoolConnectCallback): Promise<pg.PoolClient> | undefined {
    if (!poolAcquireChannel.hasSubscribers || (this.idleCount > 0 && this.waitingCount === 0)) {
      if (!callback) return super.connect();
      super.connect(callback);
      return undefined;
    }
    const message = { waiting: this.waitingCount };
    if (!callback) return poolAcquireChannel.tracePromise(() => super.connect(), message);
    poolAcquireChannel.traceCallback((done: PoolConnectCallback) => super.connect(done), 0, message, this, callback);
    return undefined;
  }
}

/**
 * node-postgres' pool already expresses the settings: `min` stays open, `max` = size + overflow,
 * the overflow closes when idle, `connectionTimeoutMillis` bounds the wait for a connection, and a
 * function `password` makes every new connection log in with the current token.
 */
export function createPool(target: ConnectionTarget, config: Config, applicationName = 'lakebase-api', observer: PoolObserver = {}): pg.Pool {
  const { password } = target;
  return new ObservedPool({
    Client: clientClass(observer),
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
