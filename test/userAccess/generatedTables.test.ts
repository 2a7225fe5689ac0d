import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { tableApis } from '../../openapi/tables.ts';
import { asUser, createUserRoles, startUserModeService, TRIPS, type UserModeService } from '../support/lakebaseService.ts';
import { startEmulatedLakebase, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

/**
 * LAKEBASE_ACCESS=user: the operations `npm run add-table` generated (here /rides, the trips table
 * served by the command) run as the signed-in user, like the trips operations: their grants decide,
 * and one user's cached answer is never served to another.
 */
const READER = 'reader@example.com';
const NOBODY = 'nobody@example.com';

let lb: EmulatedLakebase;
let service: UserModeService;
const tokens: Record<string, string> = {};
const as = (email: string) => ({ headers: asUser(email, tokens[email]!) });

before(async () => {
  lb = await startEmulatedLakebase({ rows: 300, emulator: { grantRoles: [] } });
  await createUserRoles(lb.admin, { [READER]: ['SELECT'], [NOBODY]: [] });
  for (const email of [READER, NOBODY]) tokens[email] = lb.emulator.createUserToken(email);
  service = await startUserModeService(lb);
});
after(async () => {
  await service?.close();
  await lb?.stop();
});

test('every generated operation declares the caller as its security and answers 401 without one', async () => {
  const generated = tableApis.flatMap((api) => api.operations.map((o) => o.operation.operationId));
  assert.ok(generated.includes('getRide'));
  for (const op of service.router.operations.filter((o) => generated.includes(o.operationId))) assert.equal(op.runsAsUser, true, op.operationId);
  const anonymous = await service.api.get('/rides/7');
  assert.equal(anonymous.status, 401);
});

test('generated reads run as the caller: the reader 200, a user without a grant 403 naming the operation, never the cached answer', async () => {
  for (const url of ['/rides/7', '/rides?limit=3', '/rides/count?id.lte=100']) {
    const granted = await service.api.get(url, as(READER));
    assert.equal(granted.status, 200, `${url}: ${granted.text}`);
    const cached = await service.api.get(url, as(READER));
    assert.equal(cached.headers['x-cache'], 'HIT');
    const refused = await service.api.get(url, as(NOBODY));
    assert.equal(refused.status, 403, `${url}: ${refused.text}`);
    assert.match(refused.body.detail, new RegExp(`^${NOBODY.replace('.', '\\.')} may not run (getRide|listRides|countRides): permission denied for table nyc_train_synced`));
  }
  assert.equal((await service.api.get('/rides/count', as(READER))).body.count, 300);
  // Postgres itself saw the reader: a grant taken away shows at once (on a fresh query).
  await lb.admin.query(`REVOKE SELECT ON ${TRIPS} FROM ${pg.escapeIdentifier(READER)}`);
  const revoked = await service.api.get('/rides/8', as(READER));
  assert.equal(revoked.status, 403);
});
