import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { WorkspaceClient } from '@databricks/sdk-experimental';
import type { Logger } from 'pino';
import type { ConnectionTarget } from '../db/connectionTarget.ts';
import { TokenManager, type CredentialSource } from './tokenManager.ts';
import { credentialSourceFor, getPostgresEndpoint } from './credentialSources.ts';
import { onBehalfOfIssuer } from './onBehalfOf.ts';
import { autoscalingEndpoint, provisionedInstance, readLakebaseSettings, type LakebaseSettings } from './lakebaseSettings.ts';
import { resolveLakebaseReplica } from './resolveLakebaseReplica.ts';
import { StartupError } from './startupError.ts';
import { callWorkspace, classifyWorkspaceError, createWorkspaceClient, workspaceAuthHint } from './workspaceClient.ts';

type Env = Readonly<Record<string, string | undefined>>;

export interface ResolveLakebaseOptions {
  /** Build the workspace client differently (tests); default createWorkspaceClient(env). */
  workspaceClient?: WorkspaceClient;
}

const AUTH_HINT =
  'Configure workspace auth: DATABRICKS_HOST with DATABRICKS_TOKEN (a personal access token), or DATABRICKS_CLIENT_ID and ' +
  'DATABRICKS_CLIENT_SECRET (OAuth M2M, set automatically in a Databricks App), or DATABRICKS_CONFIG_PROFILE';

/** A workspace failure at start-up, turned into one message naming what was being done and the likely fix. */
export function workspaceStartupError(doing: string, err: unknown, env: Env, settings: LakebaseSettings, notFoundHint?: string): StartupError {
  const { kind, message } = classifyWorkspaceError(err);
  const resourceVariable = settings.mode === 'lakebase-provisioned' ? 'DATABRICKS_DATABASE_INSTANCE' : 'LAKEBASE_ENDPOINT';
  const where = env.DATABRICKS_HOST ? ` at ${env.DATABRICKS_HOST}` : '';
  switch (kind) {
    case 'auth-config':
      return new StartupError(`Could not configure Databricks workspace auth while trying to ${doing}: ${message}`, {
        variable: 'DATABRICKS_HOST',
        hint: AUTH_HINT,
        cause: err,
      });
    case 'unauthenticated':
      return new StartupError(`The workspace${where} rejected the credentials in ${workspaceAuthHint(env)} while trying to ${doing}: ${message}`, {
        variable: env.DATABRICKS_CLIENT_ID ? 'DATABRICKS_CLIENT_SECRET' : 'DATABRICKS_TOKEN',
        hint: 'Check that the token or client secret is valid and belongs to this workspace',
        cause: err,
      });
    case 'forbidden':
      return new StartupError(`The identity behind ${workspaceAuthHint(env)} is not allowed to ${doing}: ${message}`, {
        variable: resourceVariable,
        hint:
          'Grant it access: in a Databricks App add the database as an app resource with "Can connect and create" permission; ' +
          'otherwise give the user or service principal CAN_USE on the instance / project',
        cause: err,
      });
    case 'not-found':
      return new StartupError(`Could not ${doing}: not found in the workspace${where} (${message})`, {
        variable: resourceVariable,
        hint: notFoundHint ?? `Check ${resourceVariable}, and that the identity may see it`,
        cause: err,
      });
    case 'unavailable':
    case 'timeout':
      return new StartupError(`The Databricks workspace${where} did not answer while trying to ${doing}: ${message}`, {
        variable: 'DATABRICKS_HOST',
        hint: 'Check DATABRICKS_HOST and the network; start-up fails rather than serve without a database token',
        cause: err,
      });
    default:
      return new StartupError(`Could not ${doing}: ${message}`, { variable: resourceVariable, cause: err });
  }
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** TLS for Lakebase: require by default; verify-full checks chain and name; disable only on loopback. */
export function lakebaseSsl(settings: Pick<LakebaseSettings, 'sslMode' | 'sslModeVariable' | 'sslRootCertFile'>, host: string): false | ConnectionOptions {
  const variable = settings.sslModeVariable ?? 'PGSSLMODE';
  let ca: string | undefined;
  if (settings.sslRootCertFile && settings.sslMode.startsWith('verify')) {
    try {
      ca = readFileSync(settings.sslRootCertFile, 'utf8');
    } catch (err) {
      throw new StartupError(`PGSSLROOTCERT (${settings.sslRootCertFile}) could not be read: ${(err as Error).message}`, {
        variable: 'PGSSLROOTCERT',
        cause: err,
      });
    }
  }
  switch (settings.sslMode) {
    case 'disable':
      if (!isLoopback(host)) {
        throw new StartupError(`${variable}=disable is not allowed for Lakebase (${host}): TLS is required`, {
          variable,
          hint: 'Use require (the default) or verify-full; disable is accepted only for a loopback host, i.e. the local workspace emulator and tests',
        });
      }
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined, ...(ca ? { ca } : {}) };
    case 'verify-full':
      return { rejectUnauthorized: true, servername: host, ...(ca ? { ca } : {}) };
  }
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

/** A token manager holding its first token (failing as the workspace failed), its refresh scheduled. */
export async function startTokenManager(source: CredentialSource, settings: LakebaseSettings, logger: Logger): Promise<TokenManager> {
  const manager = new TokenManager(source, settings.refresh, logger, {
    // At start-up only a workspace that may come back is worth a second try; a 401/403/404 is not.
    isRetryable: (err) => ['unavailable', 'timeout', 'other'].includes(classifyWorkspaceError(err).kind),
  });
  try {
    await manager.start();
  } catch (err) {
    await manager.stop();
    throw err;
  }
  return manager;
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
