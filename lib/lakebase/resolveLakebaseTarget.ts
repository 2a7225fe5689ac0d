import type { WorkspaceClient } from '@databricks/sdk-experimental';
import type { Logger } from 'pino';
import type { ConnectionTarget } from '../db/connectionTarget.ts';
import type { TokenManager } from './tokenManager.ts';
import { credentialSourceFor, getPostgresEndpoint } from './credentialSources.ts';
import { onBehalfOfIssuer } from './onBehalfOf.ts';
import { autoscalingEndpoint, provisionedInstance, readLakebaseSettings, type LakebaseSettings } from './lakebaseSettings.ts';
import { resolveLakebaseReplica } from './resolveLakebaseReplica.ts';
import { lakebaseSsl, startTokenManager, workspaceStartupError } from './lakebaseStartup.ts';
import { StartupError } from './startupError.ts';
import { callWorkspace, classifyWorkspaceError, createWorkspaceClient, workspaceAuthHint } from './workspaceClient.ts';

import type { Env } from '../ground/settingsReaders.ts';

export interface ResolveLakebaseOptions {
  /** Build the workspace client differently (tests); default createWorkspaceClient(env). */
  workspaceClient?: WorkspaceClient;
}

async function provisionedHost(w: WorkspaceClient, settings: LakebaseSettings, env: Env, logger: Logger, timeoutMs: number): Promise<string> {
  const name = provisionedInstance(settings);
  const instance = await callWorkspace(`GET /api/2.0/database/instances/${name}`, timeoutMs, (context) =>
    w.database.getDatabaseInstance({ name }, context),
  ).catch((err: unknown) => {
    throw workspaceStartupError(
      `look up the database instance "${name}"`,
      err,
      env,
      settings,
      `Check DATABRICKS_DATABASE_INSTANCE="${name}" against the workspace's database instances (Compute > Lakebase Postgres); ` +
        'if it exists, the identity may lack permission to see it (add it as an app database resource)',
    );
  });
  const state = instance.state ?? 'UNKNOWN';
  if (state === 'STOPPED' || instance.effective_stopped === true || instance.stopped === true) {
    throw new StartupError(`Database instance "${name}" is stopped (state ${state})`, {
      variable: 'DATABRICKS_DATABASE_INSTANCE',
      hint: 'Start it in the workspace (Compute > Lakebase Postgres > the instance > Start), then start this service again',
    });
  }
  if (state === 'DELETING') {
    throw new StartupError(`Database instance "${name}" is being deleted`, {
      variable: 'DATABRICKS_DATABASE_INSTANCE',
      hint: 'Point DATABRICKS_DATABASE_INSTANCE at another instance',
    });
  }
  if (state !== 'AVAILABLE') logger.warn({ instance: name, state }, `Database instance "${name}" is ${state}, not AVAILABLE: connections may fail until it is`);
  const host = instance.read_write_dns;
  if (!host) {
    throw new StartupError(`Database instance "${name}" has no read_write_dns (state ${state})`, {
      variable: 'PGHOST',
      hint: 'Wait until the instance is AVAILABLE, or set PGHOST to its host',
    });
  }
  return host;
}

async function autoscalingHost(w: WorkspaceClient, settings: LakebaseSettings, env: Env, logger: Logger, timeoutMs: number): Promise<string> {
  const path = autoscalingEndpoint(settings);
  const endpoint = await getPostgresEndpoint(w, path, timeoutMs).catch((err: unknown) => {
    throw workspaceStartupError(
      `look up the Lakebase endpoint "${path}"`,
      err,
      env,
      settings,
      `Check LAKEBASE_ENDPOINT="${path}" (projects/<project>/branches/<branch>/endpoints/<endpoint>); ` +
        'if it exists, the identity may lack permission to see it (add it as an app postgres resource)',
    );
  });
  if (endpoint.status?.disabled === true || endpoint.spec?.disabled === true) {
    throw new StartupError(`Lakebase endpoint "${path}" is disabled: it accepts no connections`, {
      variable: 'LAKEBASE_ENDPOINT',
      hint: 'Enable the compute endpoint in the workspace (Lakebase > project > branch > compute), or point LAKEBASE_ENDPOINT at another one',
    });
  }
  const state = endpoint.status?.current_state;
  if (state && state !== 'ACTIVE') logger.info({ endpoint: path, state }, `Lakebase endpoint is ${state}: the first connection wakes it up`);
  const host = endpoint.status?.hosts?.host;
  if (!host) {
    throw new StartupError(`Lakebase endpoint "${path}" reports no host (status.hosts.host)`, { variable: 'PGHOST', hint: 'Set PGHOST to the endpoint host' });
  }
  return host;
}

async function resolveUser(w: WorkspaceClient, settings: LakebaseSettings, env: Env, timeoutMs: number): Promise<{ user: string; from: string }> {
  if (settings.user) return { user: settings.user.name, from: settings.user.variable };
  const clientId = env.DATABRICKS_CLIENT_ID?.trim();
  if (clientId) return { user: clientId, from: 'DATABRICKS_CLIENT_ID' };
  const me = await callWorkspace('GET /api/2.0/preview/scim/v2/Me', timeoutMs, (context) => w.currentUser.me(context)).catch((err: unknown) => {
    const wrapped = workspaceStartupError('find the identity of the workspace token (currentUser.me) to use as the Postgres user', err, env, settings);
    if (classifyWorkspaceError(err).kind === 'auth-config' || classifyWorkspaceError(err).kind === 'unauthenticated') throw wrapped;
    throw new StartupError(`${wrapped.message.replace(/\.$/, '')}`, {
      variable: 'LAKEBASE_USER',
      hint: 'Or set LAKEBASE_USER to the Postgres role to log in as',
      cause: err,
    });
  });
  if (!me.userName)
    throw new StartupError('The workspace identity has no userName to use as the Postgres user', {
      variable: 'LAKEBASE_USER',
      hint: 'Set LAKEBASE_USER to the Postgres role to log in as',
    });
  return { user: me.userName, from: "the token's identity, SCIM Me" };
}

/**
 * Lakebase (Provisioned or Autoscaling, or either as an attached app resource) as a connection
 * target whose password is a TokenManager. Null when no Lakebase setting is present.
 *
 * Start-up order: settings → workspace client → host (PGHOST, else the instance's read_write_dns or
 * the endpoint's status.hosts.host) → TLS → user → first token (failing start-up with one clear
 * message if any step fails) → the refresh schedule.
 */
export async function resolveLakebaseTarget(env: Env, logger: Logger, options: ResolveLakebaseOptions = {}): Promise<ConnectionTarget | null> {
  const settings = readLakebaseSettings(env);
  if (!settings) return null;
  if (settings.ignored.length > 0) {
    logger.warn({ ignored: settings.ignored }, `Lakebase mode logs in with workspace tokens: ${settings.ignored.join(' and ')} ignored`);
  }
  const w = options.workspaceClient ?? createWorkspaceClient(env);
  const timeoutMs = settings.refresh.requestTimeoutSeconds * 1000;
  const resource = settings.instance ? `instance "${settings.instance}"` : `endpoint "${settings.endpoint}"`;
  const kind = settings.mode === 'lakebase-provisioned' ? 'Lakebase Provisioned' : 'Lakebase Autoscaling';
  logger.info(
    { mode: settings.mode, instance: settings.instance ?? undefined, endpoint: settings.endpoint ?? undefined, auth: workspaceAuthHint(env) },
    `${kind}: resolving ${resource}`,
  );

  const host =
    settings.host ??
    (settings.mode === 'lakebase-provisioned'
      ? await provisionedHost(w, settings, env, logger, timeoutMs)
      : await autoscalingHost(w, settings, env, logger, timeoutMs));
  const ssl = lakebaseSsl(settings, host);
  const { user, from: userFrom } = await resolveUser(w, settings, env, timeoutMs);

  let manager: TokenManager;
  try {
    manager = await startTokenManager(credentialSourceFor(w, settings, timeoutMs), settings, logger);
  } catch (err) {
    throw workspaceStartupError(`mint a database credential for ${resource}`, err, env, settings);
  }

  let replica: ConnectionTarget | undefined;
  try {
    replica = await resolveLakebaseReplica(w, settings, env, logger, timeoutMs, { port: settings.port, database: settings.database, user, password: manager });
  } catch (err) {
    await manager.stop();
    throw err;
  }

  const tls = ssl === false ? 'no TLS (loopback)' : `TLS ${settings.sslMode}`;
  const hostFrom = settings.host ? 'PGHOST' : settings.mode === 'lakebase-provisioned' ? 'read_write_dns' : 'status.hosts.host';
  logger.info(
    { mode: settings.mode, host, hostFrom, port: settings.port, database: settings.database, user, userFrom, tls: settings.sslMode },
    `${kind}: ${resource} at ${host} (from ${hostFrom}), user "${user}" (from ${userFrom}), ${tls}`,
  );
  return {
    mode: settings.mode,
    host,
    port: settings.port,
    database: settings.database,
    user,
    password: manager,
    ssl,
    description: `${kind} ${resource} at ${host}:${settings.port}/${settings.database} as "${user}" (OAuth token, ${tls})`,
    // The SDK resolved the workspace host while looking things up above.
    onBehalfOf: onBehalfOfIssuer((await w.config.getHost()).origin, settings, timeoutMs),
    ...(replica ? { replica } : {}),
    close: () => manager.stop(),
  };
}
