import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { cleanEnv, cloneProject, run, startUntilListening, stop, type FreshClone } from '../support/freshClone.ts';

/**
 * The Databricks Apps platform's own sequence on a fresh `git clone` of the committed tree:
 * `npm install` with NODE_ENV=production (no devDependencies), `npm run build`, then app.yaml's
 * command as an array, no shell. The compiled service must answer, and the process must be plain
 * node running JavaScript: no tsx or other loader, nothing transpiled at start.
 */
const PLATFORM_ENV = { NODE_ENV: 'production' };

/** Every file under a directory, relative to it. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}

describe('the Databricks Apps sequence: npm install (production), npm run build, app.yaml command', { timeout: 240_000 }, () => {
  let clone: FreshClone;

  before(() => {
    clone = cloneProject('lakebase-api-platform-');
  });
  after(() => clone?.remove());

  test('npm install without devDependencies, then npm run build compiles to dist/ without them', () => {
    run('npm', ['install'], clone.dir, cleanEnv(PLATFORM_ENV), 180_000);
    // Not @types/node: protobufjs (under the OTLP gRPC exporter) depends on it; the build uses no @types anyway.
    for (const devOnly of ['tsx', 'playwright-core', '@types/express', '@types/pg']) {
      assert.ok(!existsSync(join(clone.dir, 'node_modules', devOnly)), `${devOnly} (a devDependency) was skipped`);
    }
    run('npm', ['run', 'build'], clone.dir, cleanEnv(PLATFORM_ENV), 120_000);
    const built = filesUnder(join(clone.dir, 'dist'));
    assert.ok(built.includes('server.js'));
    assert.ok(built.includes('lib/http/router.js') && built.includes('functions/getTrip.js'));
    assert.deepEqual(
      built.filter((f) => f.endsWith('.ts')),
      [],
      'only JavaScript in dist/',
    );
    const server = readFileSync(join(clone.dir, 'dist/server.js'), 'utf8');
    assert.doesNotMatch(server, /from ['"][^'"]+\.ts['"]/, 'relative imports were rewritten to .js');
  });

  test("app.yaml's command runs the compiled service with plain node, and it answers", async () => {
    const appYaml = parse(readFileSync(join(clone.dir, 'app.yaml'), 'utf8')) as { command: string[] };
    const [command, ...args] = appYaml.command;
    const port = String(20_000 + Math.floor(Math.random() * 20_000));
    const started = await startUntilListening(
      command!,
      args,
      clone.dir,
      cleanEnv({
        ...PLATFORM_ENV,
        DATABRICKS_APP_NAME: 'lakebase-api',
        DATABRICKS_APP_PORT: port,
        SAMPLE_ROWS: '1500',
        EMBEDDED_PG_DATA_DIR: join(clone.work, 'data-app'),
      }),
      120_000,
    );
    try {
      assert.equal(started.url, `http://0.0.0.0:${port}`, 'an app listens on 0.0.0.0 at DATABRICKS_APP_PORT');

      // The process is node itself (no npm or shell between), started with exactly app.yaml's
      // arguments: no --import/--loader/--require flag, no NODE_OPTIONS, and tsx is not even installed.
      const pid = started.child.pid!;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      assert.deepEqual(argv.slice(1), args);
      assert.match(argv[0]!, /(^|\/)node$/);
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      assert.deepEqual(
        environ.filter((e) => e.startsWith('NODE_OPTIONS=')),
        [],
      );
      assert.ok(!existsSync(join(clone.dir, 'node_modules/tsx')));

      const base = `http://127.0.0.1:${port}`;
      const health = await fetch(`${base}/health`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { status: string }).status, 'healthy');
      // The Databricks Apps proxy signs the user in and forwards who they are (AUTH_MODE=apps-proxy).
      const count = await fetch(`${base}/trips/count`, { headers: { 'x-forwarded-email': 'someone@example.com' } });
      assert.equal(count.status, 200);
      assert.deepEqual(await count.json(), { total_trips: 1500 });
      const spec = await fetch(`${base}/openapi.json`);
      assert.equal(spec.status, 200);
      const document = (await spec.json()) as { openapi: string; paths: Record<string, unknown> };
      assert.match(document.openapi, /^3\.1\./);
      assert.ok(document.paths['/trips/{trip_id}']);
      // /docs and its assets come from swagger-ui-dist, resolved from the compiled lib/http/docs.js.
      const docs = await fetch(`${base}/docs/`);
      assert.equal(docs.status, 200);
      const page = await docs.text();
      assert.match(page, /swagger-ui/);
      for (const asset of ['swagger-ui.css', 'swagger-ui-bundle.js']) {
        const res = await fetch(`${base}/docs/${asset}`);
        assert.equal(res.status, 200, asset);
        assert.ok((await res.arrayBuffer()).byteLength > 10_000, `${asset} has its content`);
      }
    } finally {
      const stopped = await stop(started);
      assert.equal(stopped.code, 0, started.output.join('').slice(-2000));
      assert.ok(stopped.graceful, 'the server shut down cleanly');
      assert.ok(stopped.ms < 15_000, `exits within 15 s of SIGTERM (took ${stopped.ms} ms)`);
    }
  });
});
