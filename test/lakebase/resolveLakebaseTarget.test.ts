import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import type { ConnectionTarget } from '../../lib/db/connectionTarget.ts';
import { lakebaseSsl } from '../../lib/lakebase/lakebaseStartup.ts';
import { resolveLakebaseTarget } from '../../lib/lakebase/resolveLakebaseTarget.ts';
import { StartupError } from '../../lib/lakebase/startupError.ts';
import type { LakebaseTokenState } from '../../lib/lakebase/tokenManager.ts';
import { captureLogs } from '../support/logCapture.ts';
import {
  TEST_INSTANCE,
  TEST_SERVICE_PRINCIPAL,
  TEST_USER,
  linesLeakingSecrets,
  poolFor,
  startEmulatedLakebase,
  type EmulatedAuth,
  type EmulatedLakebase,
  type EmulatedMode,
} from '../support/workspaceEmulator.ts';

/** Start-up in each Lakebase mode with the real SDK against the emulator, then real queries. */
describe('resolveLakebaseTarget', () => {
  let lb: EmulatedLakebase;
  const logs = captureLogs('debug');

  before(async () => {
    lb = await startEmulatedLakebase({ rows: 50 });
  });
  after(async () => {
    await lb?.stop();
    assert.deepEqual(linesLeakingSecrets(logs.lines, lb.emulator.secrets()), [], 'no token, PAT or client secret in any log line');
  });

  const expectStartupError = async (env: Record<string, string>, check: (err: StartupError) => void) => {
    await assert.rejects(resolveLakebaseTarget(env, logs.logger), (err: unknown) => {
      assert.ok(err instanceof StartupError, `expected a StartupError, got ${String(err)}`);
      check(err);
      return true;
    });
  };

  const routesSince = (mark: number) => lb.emulator.requests.slice(mark).map((r) => `${r.method} ${r.path}`);

  for (const auth of ['pat', 'm2m'] as EmulatedAuth[]) {
    for (const mode of ['provisioned', 'autoscaling', 'attached-provisioned', 'attached-autoscaling'] as EmulatedMode[]) {
      test(`${auth} auth, ${mode}: resolves, logs in with a minted token, runs queries`, async () => {
        const mark = lb.emulator.requests.length;
        const target = (await resolveLakebaseTarget(lb.env(auth, mode), logs.logger)) as ConnectionTarget;
        const pool = poolFor(target);
        try {
          const expectedUser = auth === 'pat' ? TEST_USER : TEST_SERVICE_PRINCIPAL.clientId;
          assert.equal(target.mode, mode.endsWith('provisioned') ? 'lakebase-provisioned' : 'lakebase-autoscaling');
          assert.equal(target.host, lb.db.host);
          assert.equal(target.port, lb.db.port);
          assert.equal(target.database, lb.db.database);
          assert.equal(target.user, expectedUser);
          assert.equal(target.ssl, false); // PGSSLMODE=disable, accepted for the loopback emulator only
          assert.equal(typeof target.password, 'object');
          assert.doesNotMatch(target.description, /lbemu_|dapi|secret/);

          const { rows } = await pool.query('SELECT current_user AS who, count(*)::int AS trips FROM public.nyc_train_synced');
          assert.deepEqual(rows[0], { who: expectedUser, trips: 50 });

          const state = (typeof target.password === 'object' ? target.password.state() : null) as LakebaseTokenState;
          assert.equal(state.valid, true);
          assert.equal(state.status, 'ok');
          assert.equal(state.refreshCount, 1);
          assert.ok(state.secondsToExpiry! > 3500);

          const routes = routesSince(mark);
          const credentialRoute = mode.endsWith('provisioned') ? 'POST /api/2.0/database/credentials' : 'POST /api/2.0/postgres/credentials';
          assert.ok(routes.includes(credentialRoute), routes.join(', '));
          const lookedUp = routes.some((r) => r.startsWith('GET /api/2.0/database/instances/') || r.startsWith('GET /api/2.0/postgres/projects/'));
          assert.equal(lookedUp, !mode.startsWith('attached'), 'the host is looked up unless PGHOST is given');
          // The token's identity is asked for only when no client id names the user.
          assert.equal(routes.includes('GET /api/2.0/preview/scim/v2/Me'), auth === 'pat');
          if (auth === 'm2m') {
            // What SDK 0.17 fetches for client credentials on a workspace host:
            assert.deepEqual(routes.slice(0, 2), ['GET /oidc/.well-known/oauth-authorization-server', 'POST /oidc/v1/token']);
          } else {
            assert.ok(!routes.some((r) => r.includes('/oidc/')));
          }
        } finally {
          await pool.end();
          await target.close();
        }
      });
    }
  }

  test('LAKEBASE_USER (or PGUSER) overrides the Postgres user without asking the workspace', async () => {
    await lb.admin.query('CREATE ROLE "app-role" LOGIN');
    const mark = lb.emulator.requests.length;
    const target = (await resolveLakebaseTarget(lb.env('pat', 'provisioned', { LAKEBASE_USER: TEST_USER, PGUSER: 'ignored' }), logs.logger))!;
    assert.equal(target.user, TEST_USER);
    assert.ok(!routesSince(mark).includes('GET /api/2.0/preview/scim/v2/Me'));
    await target.close();
  });

  test('returns null when no Lakebase setting is present', async () => {
    assert.equal(await resolveLakebaseTarget({}, logs.logger), null);
    assert.equal(await resolveLakebaseTarget({ DATABRICKS_HOST: lb.emulator.url, DATABRICKS_TOKEN: 'x' }, logs.logger), null);
    assert.equal(await resolveLakebaseTarget({ PGHOST: 'db.example.com', PGPASSWORD: 'secret-password' }, logs.logger), null);
    // A developer's local Postgres without a password (trust) is plain Postgres, not Lakebase.
    assert.equal(await resolveLakebaseTarget({ PGHOST: 'localhost', PGUSER: 'me' }, logs.logger), null);
  });

  test('PG* injected without a password and without an instance or endpoint: one clear error', async () => {
    await expectStartupError(
      {
        PGHOST: 'instance-1234.database.cloud.databricks.com',
        PGUSER: 'app',
        PGDATABASE: 'databricks_postgres',
        PGSSLMODE: 'require',
        DATABRICKS_CLIENT_ID: 'abc',
      },
      (err) => {
        assert.equal(err.variable, 'DATABRICKS_DATABASE_INSTANCE');
        assert.match(err.message, /PGHOST .* without PGPASSWORD/);
        assert.match(err.message, /DATABRICKS_DATABASE_INSTANCE/);
        assert.match(err.message, /LAKEBASE_ENDPOINT/);
      },
    );
  });

  test('configuration mistakes name the variable', async () => {
    await expectStartupError(lb.env('pat', 'provisioned', { LAKEBASE_ENDPOINT: 'projects/a/branches/b/endpoints/c' }), (err) =>
      assert.match(err.message, /Both DATABRICKS_DATABASE_INSTANCE and LAKEBASE_ENDPOINT/),
    );
    await assert.rejects(resolveLakebaseTarget(lb.env('pat', 'autoscaling', { LAKEBASE_ENDPOINT: 'primary' }), logs.logger), (err: ConfigError) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.variable, 'LAKEBASE_ENDPOINT');
      return true;
    });
    await assert.rejects(resolveLakebaseTarget(lb.env('pat', 'provisioned', { PGSSLMODE: 'sometimes' }), logs.logger), /PGSSLMODE/);
    await expectStartupError(lb.env('pat', 'attached-provisioned', { PGHOST: 'instance-1.database.cloud.databricks.com' }), (err) => {
      assert.equal(err.variable, 'PGSSLMODE');
      assert.match(err.message, /disable is not allowed for Lakebase .*loopback/);
    });
  });

  test('a missing instance: not found, naming the instance and the likely fix', async () => {
    await expectStartupError(lb.env('pat', 'provisioned', { DATABRICKS_DATABASE_INSTANCE: 'no-such-instance' }), (err) => {
      assert.equal(err.variable, 'DATABRICKS_DATABASE_INSTANCE');
      assert.match(err.message, /"no-such-instance"/);
      assert.match(err.message, /not found/);
      assert.match(err.message, /permission/);
    });
  });

  test('a stopped instance: says so and how to start it', async () => {
    lb.emulator.setInstance({ name: 'stopped-instance', state: 'STOPPED' });
    await expectStartupError(lb.env('m2m', 'provisioned', { DATABRICKS_DATABASE_INSTANCE: 'stopped-instance' }), (err) => {
      assert.equal(err.variable, 'DATABRICKS_DATABASE_INSTANCE');
      assert.match(err.message, /"stopped-instance" is stopped/);
      assert.match(err.message, /Start it/);
    });
  });

  test('no permission on the instance, or on minting for it: a permissions hint', async () => {
    lb.emulator.setInstance({ name: 'private-instance', accessibleBy: ['someone-else@example.com'] });
    await expectStartupError(lb.env('pat', 'provisioned', { DATABRICKS_DATABASE_INSTANCE: 'private-instance' }), (err) => {
      assert.match(err.message, /not allowed to look up the database instance "private-instance"/);
      assert.match(err.message, /Can connect and create/);
    });
    // Attached mode skips the lookup: the credential call reports it.
    await expectStartupError(lb.env('pat', 'attached-provisioned', { DATABRICKS_DATABASE_INSTANCE: 'private-instance' }), (err) =>
      assert.match(err.message, /not allowed to mint a database credential for instance "private-instance"/),
    );
  });

  test('a disabled Autoscaling endpoint is refused at start-up', async () => {
    lb.emulator.setEndpoint({ name: 'projects/p/branches/b/endpoints/off', disabled: true });
    await expectStartupError(lb.env('pat', 'autoscaling', { LAKEBASE_ENDPOINT: 'projects/p/branches/b/endpoints/off' }), (err) =>
      assert.match(err.message, /is disabled/),
    );
  });

  test('bad workspace credentials: rejected, naming the variable to check', async () => {
    await expectStartupError(lb.env('pat', 'provisioned', { DATABRICKS_TOKEN: 'dapi-wrong' }), (err) => {
      assert.equal(err.variable, 'DATABRICKS_TOKEN');
      assert.match(err.message, /rejected the credentials/);
    });
    await expectStartupError(lb.env('m2m', 'provisioned', { DATABRICKS_CLIENT_SECRET: 'wrong-secret' }), (err) => {
      assert.equal(err.variable, 'DATABRICKS_CLIENT_SECRET');
      assert.match(err.message, /rejected the credentials/);
    });
  });

  test('an unreachable or hung workspace fails start-up within the request deadline', async () => {
    lb.emulator.setFault({ kind: 'delay', ms: 3000 }, { match: 'lookup', times: 1 });
    const started = Date.now();
    await expectStartupError(lb.env('pat', 'provisioned', { WORKSPACE_REQUEST_TIMEOUT_SECONDS: '0.5' }), (err) => {
      assert.equal(err.variable, 'DATABRICKS_HOST');
      assert.match(err.message, /did not answer .* within 0.5s/);
    });
    assert.ok(Date.now() - started < 2500);

    await lb.emulator.down();
    try {
      for (const auth of ['pat', 'm2m'] as const) {
        await expectStartupError(lb.env(auth, 'provisioned'), (err) => {
          assert.equal(err.variable, 'DATABRICKS_HOST');
          assert.match(err.message, /did not answer/);
        });
      }
    } finally {
      await lb.emulator.up();
    }
  });

  test('TLS: require by default, verify-full checks the name, disable only on loopback', () => {
    const base = { sslModeVariable: null, sslRootCertFile: null };
    assert.deepEqual(lakebaseSsl({ ...base, sslMode: 'require' }, 'instance-1.database.cloud.databricks.com'), { rejectUnauthorized: false });
    assert.deepEqual(lakebaseSsl({ ...base, sslMode: 'verify-full' }, 'instance-1.database.cloud.databricks.com'), {
      rejectUnauthorized: true,
      servername: 'instance-1.database.cloud.databricks.com',
    });
    assert.equal(lakebaseSsl({ ...base, sslMode: 'disable' }, '127.0.0.1'), false);
    assert.throws(() => lakebaseSsl({ ...base, sslMode: 'disable' }, '10.0.0.5'), StartupError);
  });

  test('defaults: database databricks_postgres, port 5432, TLS require', async () => {
    const target = (await resolveLakebaseTarget(
      { DATABRICKS_HOST: lb.emulator.url, DATABRICKS_TOKEN: lb.emulator.patFor(TEST_USER), DATABRICKS_DATABASE_INSTANCE: TEST_INSTANCE },
      logs.logger,
    ))!;
    assert.equal(target.database, 'databricks_postgres');
    assert.equal(target.port, 5432);
    assert.deepEqual(target.ssl, { rejectUnauthorized: false });
    await target.close();
  });
});
