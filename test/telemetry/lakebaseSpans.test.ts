/**
 * In Lakebase modes (the workspace emulated at its HTTP boundary): credential refreshes are spans,
 * and with LAKEBASE_ACCESS=user the server span names the verified user, the user's credential
 * minted inside the request's trace. No user token or minted password reaches the collector.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTelemetryIfConfigured } from '../../lib/telemetry/startTelemetry.ts';
import type { Telemetry } from '../../lib/telemetry/telemetrySettings.ts';
import { APP_VERSION } from '../../lib/version.ts';
import { asUser, createUserRoles, startUserModeService, type UserModeService } from '../support/lakebaseService.ts';
import { OtlpReceiver, STATUS_ERROR, type ReceivedSpan } from '../support/otlpReceiver.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startEmulatedLakebase, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

const READER = 'span-reader@example.com';

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let lb: EmulatedLakebase;
let service: UserModeService;
let token: string;

before(async () => {
  receiver = await OtlpReceiver.grpc();
  lb = await startEmulatedLakebase({ rows: 200, emulator: { grantRoles: [] } });
  await createUserRoles(lb.admin, { [READER]: ['SELECT'] });
  token = lb.emulator.createUserToken(READER);
  const started = await startTelemetryIfConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, { version: APP_VERSION });
  assert.ok(started);
  telemetry = started;
  service = await startUserModeService(lb);
});

after(async () => {
  await service?.close();
  await telemetry?.shutdown();
  await lb?.stop();
  await receiver?.close();
});

async function exported(what: string, find: (spans: ReceivedSpan[]) => ReceivedSpan | undefined): Promise<ReceivedSpan> {
  return pollUntil(what, 10_000, async () => {
    await telemetry.flush();
    return find(receiver.spans);
  });
}

test("the service's own token: its refresh at start-up is a span with its reason", async () => {
  const refresh = await exported('the service credential refresh', (spans) =>
    spans.find((s) => s.name === 'credential.refresh' && s.attributes['credential.kind'] === 'service'),
  );
  assert.equal(typeof refresh.attributes['credential.refresh.reason'], 'string');
  assert.notEqual(refresh.statusCode, STATUS_ERROR);
});

test("user mode: the server span names the verified user, and the user's first credential is minted inside the request's trace", async () => {
  const res = await service.api.get('/trips/3', { headers: asUser(READER, token) });
  assert.equal(res.status, 200, res.text);
  const requestId = res.headers['x-request-id']!;
  const server = await exported('the server span', (spans) => spans.find((s) => s.attributes['request.id'] === requestId));
  assert.equal(server.name, 'GET /trips/{trip_id}');
  assert.equal(server.attributes['enduser.id'], READER);
  const trace = receiver.spans.filter((s) => s.traceId === server.traceId);
  const mint = trace.find((s) => s.name === 'credential.refresh' && s.attributes['credential.kind'] === 'user');
  assert.ok(mint, `a user credential span in the trace: ${trace.map((s) => s.name).join(', ')}`);
  const acquire = trace.find((s) => s.spanId === mint.parentSpanId);
  assert.equal(acquire?.name, 'db.pool.acquire', 'minted while a connection was opened for the request');

  // Every secret the emulated workspace issued (PATs, client secret, M2M tokens, minted database
  // credentials) and the user's forwarded token: in no span.
  const everything = JSON.stringify(receiver.spans);
  const secrets = [token, ...lb.emulator.secrets()].filter((secret) => secret.length >= 8);
  assert.ok(secrets.length > 3);
  assert.deepEqual(
    secrets.filter((secret) => everything.includes(secret)),
    [],
  );
});
