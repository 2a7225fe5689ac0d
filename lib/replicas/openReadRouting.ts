import type { Logger } from 'pino';
import type { Config } from '../ground/config.ts';
import type { ConnectionTarget } from '../db/connectionTarget.ts';
import type { Database } from '../db/database.ts';
import { ReadRouting } from './readRouting.ts';

export interface OpenReadRoutingOptions {
  target: ConnectionTarget;
  primary: Database;
  config: Config;
  logger: Logger;
}

/** Read routing when the target has a read replica; null (everything on the primary, as without one) otherwise. */
export function openReadRouting({ target, primary, config, logger }: OpenReadRoutingOptions): ReadRouting | null {
  const replica = target.replica;
  if (!replica) return null;
  if (config.access.mode === 'user') {
    // Per-user pools exist for the primary only: a user's reads run as that user, on the primary.
    logger.warn({ replica: replica.description }, 'LAKEBASE_ACCESS=user: every request runs as its user on the primary; the read replica is not used');
    void replica.close().catch(() => undefined);
    return null;
  }
  logger.info(
    {
      replica: {
        host: replica.host,
        port: replica.port,
        maxLagSeconds: config.readReplica.maxLagSeconds,
        pool: { size: config.readReplica.poolSize, max: config.readReplica.poolSize + config.readReplica.maxOverflow },
      },
    },
    `Read replica: ${replica.description}; reads declared x-read-from: replica go there`,
  );
  return new ReadRouting({ primary, replicaTarget: replica, config, logger });
}
