import { tracingChannel } from 'node:diagnostics_channel';

/**
 * Published around each mint of a Postgres credential, the service's (lakebase/tokenManager.ts) or
 * a signed-in user's (userAccess/userPassword.ts). Telemetry subscribes (lib/telemetry/channelSpans.ts);
 * with nobody listening nothing is published.
 */
export interface CredentialRefreshMessage {
  kind: 'service' | 'user';
  /** Why the service's credential is refreshed (schedule, expiry, a refused login). */
  reason?: string;
}

export const credentialRefreshChannel = tracingChannel<unknown, CredentialRefreshMessage>('lakebase-api:credential.refresh');
