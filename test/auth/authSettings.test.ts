import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { refuseOpenByDefault } from '../../lib/auth/openByDefault.ts';
import { loadConfig } from '../../lib/ground/config.ts';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import { startTestDatabase, startTestService, type TestDatabase, type TestService } from '../support/testService.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

const configError = (variable: string, pattern: RegExp) => (err: unknown) =>
  err instanceof ConfigError && err.variable === variable && pattern.test(err.message);

describe('AUTH_MODE and its settings', () => {
  test('defaults: apps-proxy inside a Databricks App and with LAKEBASE_ACCESS=user, else none (marked as a default)', () => {
    assert.deepEqual([loadConfig({ DATABRICKS_APP_NAME: 'x' }).auth.mode, loadConfig({ DATABRICKS_APP_NAME: 'x' }).auth.defaulted], ['apps-proxy', false]);
    assert.equal(loadConfig({ LAKEBASE_ACCESS: 'user' }).auth.mode, 'apps-proxy');
    assert.deepEqual([loadConfig({}).auth.mode, loadConfig({}).auth.defaulted], ['none', true]);
    assert.deepEqual([loadConfig({ AUTH_MODE: 'none' }).auth.mode, loadConfig({ AUTH_MODE: 'none' }).auth.defaulted], ['none', false]);
    assert.deepEqual(loadConfig({ AUTH_MODE: 'apps-proxy', AUTH_WRITERS: 'a@example.com, Data Engineers ,' }).auth.writers, [
      'a@example.com',
      'Data Engineers',
    ]);
  });

  test('refused: an unknown mode, jwt without issuer or audience, a plain-http remote issuer, impossible combinations', () => {
    assert.throws(() => loadConfig({ AUTH_MODE: 'basic' }), configError('AUTH_MODE', /one of apps-proxy, databricks-token, jwt, none/));
    assert.throws(() => loadConfig({ AUTH_MODE: 'jwt', AUTH_JWT_AUDIENCE: 'api' }), configError('AUTH_JWT_ISSUER', /must be set/));
    assert.throws(() => loadConfig({ AUTH_MODE: 'jwt', AUTH_JWT_ISSUER: 'https://idp.example.com' }), configError('AUTH_JWT_AUDIENCE', /must be set/));
    assert.throws(
      () => loadConfig({ AUTH_MODE: 'jwt', AUTH_JWT_ISSUER: 'http://idp.example.com', AUTH_JWT_AUDIENCE: 'api' }),
      configError('AUTH_JWT_ISSUER', /https/),
    );
    assert.throws(
      () => loadConfig({ AUTH_MODE: 'jwt', AUTH_JWT_ISSUER: 'https://idp.example.com', AUTH_JWT_AUDIENCE: 'api', AUTH_JWT_CLOCK_SKEW_SECONDS: '3600' }),
      configError('AUTH_JWT_CLOCK_SKEW_SECONDS', /0 to 300/),
    );
    assert.equal(
      loadConfig({ AUTH_MODE: 'jwt', AUTH_JWT_ISSUER: 'http://127.0.0.1:9000/realm', AUTH_JWT_AUDIENCE: 'api' }).auth.jwt?.issuer,
      'http://127.0.0.1:9000/realm',
    );
    assert.throws(
      () => loadConfig({ AUTH_MODE: 'jwt', LAKEBASE_ACCESS: 'user', AUTH_JWT_ISSUER: 'https://idp.example.com', AUTH_JWT_AUDIENCE: 'api' }),
      configError('AUTH_MODE', /databricks-token or apps-proxy/),
    );
    assert.throws(() => loadConfig({ AUTH_MODE: 'none', LAKEBASE_ACCESS: 'user' }), configError('AUTH_MODE', /LAKEBASE_ACCESS=user/));
    assert.throws(() => loadConfig({ AUTH_WRITERS: 'a@example.com' }), configError('AUTH_WRITERS', /identifies callers/));
    assert.throws(() => loadConfig({ AUTH_MODE: 'databricks-token' }), configError('DATABRICKS_HOST', /must be set/));
  });

  test('open by default only on loopback: beyond it, and on Lambda, one line naming AUTH_MODE and its choices', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.2'])
      assert.doesNotThrow(() => refuseOpenByDefault(loadConfig({ HOST: host }), 'server'), host);
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'api.example.com']) {
      assert.throws(
        () => refuseOpenByDefault(loadConfig({ HOST: host }), 'server'),
        configError('AUTH_MODE', /must be set for a server bound to .* one of apps-proxy, databricks-token, jwt, none/),
        host,
      );
    }
    assert.throws(() => refuseOpenByDefault(loadConfig({}), 'lambda'), configError('AUTH_MODE', /on AWS Lambda/));
    // Chosen on purpose, or inside Databricks Apps: no refusal.
    assert.doesNotThrow(() => refuseOpenByDefault(loadConfig({ HOST: '0.0.0.0', AUTH_MODE: 'none' }), 'server'));
    assert.doesNotThrow(() => refuseOpenByDefault(loadConfig({ AUTH_MODE: 'none' }), 'lambda'));
    assert.doesNotThrow(() => refuseOpenByDefault(loadConfig({ DATABRICKS_APP_NAME: 'x' }), 'server'));
  });

  test('npm start bound beyond loopback without AUTH_MODE exits 1 with one line, before opening any database', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '0.0.0.0', PORT: '0', EMBEDDED_PG_DATA_DIR: '/nonexistent/never-created' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.equal(stdout, '');
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(
      lines[0]!,
      /^Start-up failed: Invalid configuration: AUTH_MODE must be set for a server bound to 0\.0\.0\.0 .*one of apps-proxy, databricks-token, jwt, none/,
    );
  });
});

describe('AUTH_MODE=apps-proxy (inside a Databricks App)', () => {
  let database: TestDatabase;
  let service: TestService;
  before(async () => {
    database = await startTestDatabase(100);
    service = await startTestService({ database, env: { DATABRICKS_APP_NAME: 'lakebase-api', AUTH_WRITERS: 'writer@example.com' } });
  });
  after(async () => {
    await service?.close();
    await database?.stop();
  });

  test("the proxy's X-Forwarded-Email is the caller: required, logged, matched against AUTH_WRITERS", async () => {
    const missing = await service.api.get('/trips/5');
    assert.equal(missing.status, 401);
    assert.equal(missing.body.field, 'x-forwarded-email');
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="lakebase-api"');
    const as = (email: string) => ({ headers: { 'x-forwarded-email': email } });
    assert.equal((await service.api.get('/trips/5', as('reader@example.com'))).status, 200);
    assert.equal((await service.api.post('/trips/5/vendor', { vendor_id: '1' }, as('Writer@Example.com'))).status, 200, 'e-mails match case-insensitively');
    const refused = await service.api.post('/trips/5/vendor', { vendor_id: '2' }, as('reader@example.com'));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.operation, 'updateTripVendor');
    assert.equal((await service.api.get('/health')).status, 200, 'probes stay open');
    assert.ok(service.logs.records().some((r) => r.route === '/trips/{trip_id}' && r.status === 200 && r.user === 'reader@example.com'));
    assert.deepEqual(Object.keys(service.router.document.components?.securitySchemes ?? {}), ['forwardedEmail']);
  });
});
