import { randomUUID } from 'node:crypto';
import type { WorkspaceClient } from '@databricks/sdk-experimental';
import { autoscalingEndpoint, provisionedInstance } from './lakebaseSettings.ts';
import type { Credential, CredentialSource } from './tokenManager.ts';
import { callWorkspace } from './workspaceClient.ts';

/** Lakebase tokens last one hour; used only if a response ever lacks its expiry. */
const DOCUMENTED_TOKEN_LIFETIME_MS = 60 * 60 * 1000;

function toCredential(token: unknown, expiry: unknown, field: string): Credential {
  if (typeof token !== 'string' || token === '') throw new Error('the credential response has no token');
  let expiresAt: Date;
  if (typeof expiry === 'string' && expiry !== '') {
    expiresAt = new Date(expiry);
    if (Number.isNaN(expiresAt.getTime())) throw new Error(`the credential response has an unreadable ${field}`);
  } else {
    expiresAt = new Date(Date.now() + DOCUMENTED_TOKEN_LIFETIME_MS);
  }
  return { token, expiresAt };
}

/** Lakebase Provisioned: `POST /api/2.0/database/credentials` via the SDK's typed database service. */
function provisionedCredentialSource(w: WorkspaceClient, instanceName: string, timeoutMs: number): CredentialSource {
  return {
    description: `Lakebase Provisioned instance "${instanceName}"`,
    async generate(signal) {
      const credential = await callWorkspace(
        'POST /api/2.0/database/credentials',
        timeoutMs,
        (context) => w.database.generateDatabaseCredential({ instance_names: [instanceName], request_id: randomUUID() }, context),
        signal,
      );
      return toCredential(credential.token, credential.expiration_time, 'expiration_time');
    },
  };
}

interface PostgresCredentialResponse {
  token?: string;
  expire_time?: string;
}

/**
 * Lakebase Autoscaling: `POST /api/2.0/postgres/credentials` with `{ endpoint }`. SDK 0.17 has no
 * typed client for the postgres API, so this goes through its authenticated ApiClient (same auth,
 * retries and user agent as every other call).
 */
export function autoscalingCredentialSource(w: WorkspaceClient, endpoint: string, timeoutMs: number): CredentialSource {
  return {
    description: `Lakebase Autoscaling endpoint "${endpoint}"`,
    async generate(signal) {
      const response = (await callWorkspace(
        'POST /api/2.0/postgres/credentials',
        timeoutMs,
        (context) =>
          w.apiClient.request(
            {
              path: '/api/2.0/postgres/credentials',
              method: 'POST',
              headers: new Headers({ Accept: 'application/json', 'Content-Type': 'application/json' }),
              raw: false,
              payload: { endpoint },
            },
            context,
          ),
        signal,
      )) as PostgresCredentialResponse;
      return toCredential(response.token, response.expire_time, 'expire_time');
    },
  };
}

/** The Autoscaling endpoint resource, as far as this service reads it. */
export interface PostgresEndpoint {
  name?: string;
  status?: {
    current_state?: string;
    pending_state?: string;
    disabled?: boolean;
    endpoint_type?: string;
    hosts?: { host?: string; read_only_host?: string };
  };
  spec?: { disabled?: boolean; endpoint_type?: string };
}

/** `GET /api/2.0/postgres/{projects/…/branches/…/endpoints/…}` */
export async function getPostgresEndpoint(w: WorkspaceClient, endpoint: string, timeoutMs: number): Promise<PostgresEndpoint> {
  const path = `/api/2.0/postgres/${endpoint.split('/').map(encodeURIComponent).join('/')}`;
  return (await callWorkspace(`GET ${path}`, timeoutMs, (context) =>
    w.apiClient.request({ path, method: 'GET', headers: new Headers({ Accept: 'application/json' }), raw: false }, context),
  )) as PostgresEndpoint;
}

/** A Lakebase database as the credential APIs name it: Provisioned by instance, Autoscaling by endpoint path. */
export interface LakebaseResource {
  mode: 'lakebase-provisioned' | 'lakebase-autoscaling';
  instance?: string | null;
  endpoint?: string | null;
}

/** The credential source of a Lakebase database, for the identity `w` is authenticated as. */
export function credentialSourceFor(w: WorkspaceClient, resource: LakebaseResource, timeoutMs: number): CredentialSource {
  return resource.mode === 'lakebase-provisioned'
    ? provisionedCredentialSource(w, provisionedInstance(resource), timeoutMs)
    : autoscalingCredentialSource(w, autoscalingEndpoint(resource), timeoutMs);
}
