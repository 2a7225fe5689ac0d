import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { tableApis } from '../../openapi/tables.ts';
import { projectFormatter } from '../../tools/addTable/formatGenerated.ts';
import { generateTable } from '../../tools/addTable/generateTable.ts';
import { connectAsTheService } from '../../tools/addTable/serviceConnection.ts';
import { asUser, createUserRoles, startUserModeService, TRIPS, type UserModeService } from '../support/lakebaseService.ts';
import { startEmulatedLakebase, TEST_SERVICE_PRINCIPAL, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

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
  for (const op of service.router.operations.filter((o) => generated.includes(o.operationId))) assert.equal(op.guarded, true, op.operationId);
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
    assert.match(
      refused.body.detail,
      new RegExp(`^${NOBODY.replace('.', '\\.')} may not run (getRide|listRides|countRides): permission denied for table nyc_train_synced`),
    );
    // The PostgREST-dialect collection also carries the SQLSTATE, as postgrest-js' error.code.
    if (url.startsWith('/rides?')) assert.equal(refused.body.code, '42501');
  }
  assert.equal((await service.api.get('/rides/count', as(READER))).body.count, 300);
  // Postgres itself saw the reader: a grant taken away shows at once (on a fresh query).
  await lb.admin.query(`REVOKE SELECT ON ${TRIPS} FROM ${pg.escapeIdentifier(READER)}`);
  const revoked = await service.api.get('/rides/8', as(READER));
  assert.equal(revoked.status, 403);
});

test('the command reads through Lakebase OAuth like the service, and the committed /rides files are what it writes today', async () => {
  // A service principal (OAuth M2M) against the emulated workspace: the SDK gets the token, the
  // emulator mints the Postgres credential, exactly as the service logs in.
  const readTrips = async () => {
    const { pool, close } = await connectAsTheService(lb.env('m2m', 'provisioned'));
    try {
      return await generateTable(pool, 'public.nyc_train_synced', { path: 'rides', writes: false });
    } finally {
      await close();
    }
  };
  // The suite grants nothing: the principal's login works, its read is refused, in one line naming both.
  await assert.rejects(
    readTrips(),
    new Error(`Table public.nyc_train_synced exists but ${TEST_SERVICE_PRINCIPAL.clientId} may not read it (no SELECT privilege)`),
  );
  await lb.admin.query(`GRANT SELECT ON ${TRIPS} TO ${pg.escapeIdentifier(TEST_SERVICE_PRINCIPAL.clientId)}`);
  const generated = await readTrips();
  // The seeded table's comment records its row count, which differs between this suite and `npm start`.
  const sameSeed = (text: string) => text.replace(/rows=\d+/g, 'rows=N');
  // The command writes its files through the project's formatter (tools/addTable/formatGenerated.ts).
  const format = projectFormatter(fileURLToPath(new URL('../../', import.meta.url)));
  assert.ok(format, 'Biome is a dev dependency: npm ci installs it');
  for (const file of generated.files) {
    const committed = readFileSync(new URL(`../../${file.path}`, import.meta.url), 'utf8');
    assert.equal(sameSeed(format(file.path, file.text)), sameSeed(committed), `${file.path} is the command's output, untouched`);
  }
  assert.match(generated.report, /GET {2}\/rides\/\{id\} {3}getRide/);
});
