import type { WorkspaceClient } from '@databricks/sdk-experimental';
import type { Logger } from 'pino';
import type { ConnectionTarget, PasswordSource } from '../db/connectionTarget.ts';
import type { TokenManager } from './tokenManager.ts';
import { autoscalingCredentialSource, getPostgresEndpoint } from './credentialSources.ts';
import { ConfigError, type Env } from '../ground/settingsReaders.ts';
import { type LakebaseSettings, provisionedInstance } from './lakebaseSettings.ts';
import { lakebaseSsl, startTokenManager, workspaceStartupError } from './lakebaseStartup.ts';
import { StartupError } from './startupError.ts';
import { callWorkspace, classifyWorkspaceError } from './workspaceClient.ts';

type ReplicaSettings = NonNullable<LakebaseSettings['read']>;

/** What the replica shares with its primary: the database, the role, and (Provisioned) the credential. */
export interface PrimaryLogin {
  port: number;
  database: string;
  user: string;
  password: PasswordSource;
}

const nothingToClose = async () => undefined;

/** The replica as a connection target: its own host, the primary's port, database and role. */
function replicaTarget(
  settings: LakebaseSettings,
  host: string,
  ssl: ConnectionTarget['ssl'],
  primary: PrimaryLogin,
  password: PasswordSource,
  close: () => Promise<void>,
  describe: (address: string) => string,
): ConnectionTarget {
  const { port, database, user } = primary;
  return { mode: settings.mode, host, port, database, user, password, ssl, description: describe(`${host}:${port}/${database}`), close };
}

/** A workspace failure while resolving the replica, named after the replica's own setting. */
function replicaStartupError(variable: string, doing: string, err: unknown, env: Env, settings: LakebaseSettings, hint: string): StartupError {
  const wrapped = workspaceStartupError(doing, err, env, settings);
  const kind = classifyWorkspaceError(err).kind;
  return kind === 'not-found' || kind === 'forbidden' ? new StartupError(wrapped.message, { variable, hint, cause: err }) : wrapped;
}

/**
 * Lakebase Provisioned: the instance's readable secondaries answer at `read_only_dns`
 * (`instance-ro-…`). The credential is minted per instance, so the primary's token logs in there too.
 * Without readable secondaries there is nothing to read from: said once, clearly, and every read
 * stays on the primary.
 */
async function provisionedReplica(
  w: WorkspaceClient,
  settings: LakebaseSettings,
  read: ReplicaSettings,
  env: Env,
  logger: Logger,
  timeoutMs: number,
  primary: PrimaryLogin,
): Promise<ConnectionTarget | undefined> {
  const name = provisionedInstance(settings);
  let host = read.host;
  let hostFrom = 'PGHOST_READ';
  if (!host) {
    const instance = await callWorkspace(`GET /api/2.0/database/instances/${name}`, timeoutMs, (context) =>
      w.database.getDatabaseInstance({ name }, context),
    ).catch((err: unknown) => {
      throw replicaStartupError(
        'LAKEBASE_READ_REPLICAS',
        `look up the readable secondaries of database instance "${name}"`,
        err,
        env,
        settings,
        `Check DATABRICKS_DATABASE_INSTANCE="${name}"`,
      );
    });
    const readable = instance.effective_enable_readable_secondaries ?? instance.enable_readable_secondaries;
    if (!instance.read_only_dns || readable === false) {
      const nodes = instance.effective_node_count ?? instance.node_count ?? 1;
      logger.warn(
        { instance: name, nodeCount: nodes, readableSecondaries: readable ?? false },
        `LAKEBASE_READ_REPLICAS=true, but database instance "${name}" has no readable secondaries (${nodes} node${nodes === 1 ? '' : 's'}, ` +
          `readable secondaries ${readable ? 'enabled but no read_only_dns yet' : 'disabled'}): every read goes to the primary. ` +
          'To read from secondaries, set node_count to 2 or 3 and enable_readable_secondaries to true on the instance',
      );
      return undefined;
    }
    host = instance.read_only_dns;
    hostFrom = 'read_only_dns';
  }
  // The token manager is the primary's: it stops with the primary.
  return replicaTarget(
    settings,
    host,
    lakebaseSsl(settings, host),
    primary,
    primary.password,
    nothingToClose,
    (address) => `Lakebase Provisioned instance "${name}" readable secondaries at ${address} (from ${hostFrom}; the instance's credential)`,
  );
}

/**
 * Lakebase Autoscaling: a read-only endpoint of the same branch, with its own host
 * (`status.hosts.read_only_host`, else `status.hosts.host`) and its own credential
 * (`POST /api/2.0/postgres/credentials` naming that endpoint), kept fresh by its own token manager.
 */
async function autoscalingReplica(
  w: WorkspaceClient,
  settings: LakebaseSettings,
  read: ReplicaSettings,
  env: Env,
  logger: Logger,
  timeoutMs: number,
  primary: PrimaryLogin,
): Promise<ConnectionTarget> {
  // readLakebaseSettings sets the read endpoint whenever an Autoscaling replica is configured.
  if (!read.endpoint) throw new ConfigError('LAKEBASE_READ_ENDPOINT', 'must be set to read from a Lakebase Autoscaling replica');
  const path = read.endpoint;
  let host = read.host;
  let hostFrom = 'PGHOST_READ';
  if (!host) {
    const endpoint = await getPostgresEndpoint(w, path, timeoutMs).catch((err: unknown) => {
      throw replicaStartupError(
        'LAKEBASE_READ_ENDPOINT',
        `look up the Lakebase read endpoint "${path}"`,
        err,
        env,
        settings,
        `Check LAKEBASE_READ_ENDPOINT="${path}" (a read replica of the primary's branch), and that the identity may see it`,
      );
    });
    if (endpoint.status?.disabled === true || endpoint.spec?.disabled === true) {
      logger.warn({ endpoint: path }, `Lakebase read endpoint "${path}" is disabled: reads go to the primary until it is enabled`);
    }
    const type = endpoint.status?.endpoint_type ?? endpoint.spec?.endpoint_type;
    const hosts = endpoint.status?.hosts;
    // A read-write endpoint has a read-only host only when it runs readable secondaries.
    host = type === 'ENDPOINT_TYPE_READ_WRITE' ? (hosts?.read_only_host ?? null) : (hosts?.read_only_host ?? hosts?.host ?? null);
    if (!host) {
      throw new StartupError(
        type === 'ENDPOINT_TYPE_READ_WRITE'
          ? `LAKEBASE_READ_ENDPOINT "${path}" is a read-write endpoint without readable secondaries: reading from it would not offload the primary`
          : `Lakebase read endpoint "${path}" reports no host (status.hosts)`,
        {
          variable: 'LAKEBASE_READ_ENDPOINT',
          hint: 'Point it at a read replica (endpoint_type ENDPOINT_TYPE_READ_ONLY) of the same branch, or set PGHOST_READ',
        },
      );
    }
    hostFrom = hosts?.read_only_host ? 'status.hosts.read_only_host' : 'status.hosts.host';
  }
  const ssl = lakebaseSsl(settings, host);
  let manager: TokenManager;
  try {
    manager = await startTokenManager(autoscalingCredentialSource(w, path, timeoutMs), settings, logger);
  } catch (err) {
    throw replicaStartupError(
      'LAKEBASE_READ_ENDPOINT',
      `mint a database credential for the read endpoint "${path}"`,
      err,
      env,
      settings,
      'Grant the identity access to the read replica (in a Databricks App: add it as a postgres resource)',
    );
  }
  return replicaTarget(
    settings,
    host,
    ssl,
    primary,
    manager,
    () => manager.stop(),
    (address) => `Lakebase Autoscaling read endpoint "${path}" at ${address} (from ${hostFrom}; its own credential)`,
  );
}

/** The read replica of a Lakebase database, when one is configured (see lakebaseSettings.ts). */
export async function resolveLakebaseReplica(
  w: WorkspaceClient,
  settings: LakebaseSettings,
  env: Env,
  logger: Logger,
  timeoutMs: number,
  primary: PrimaryLogin,
): Promise<ConnectionTarget | undefined> {
  const { read } = settings;
  if (!read) return undefined;
  return settings.mode === 'lakebase-provisioned'
    ? provisionedReplica(w, settings, read, env, logger, timeoutMs, primary)
    : autoscalingReplica(w, settings, read, env, logger, timeoutMs, primary);
}
