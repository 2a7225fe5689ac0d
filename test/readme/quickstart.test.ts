import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanEnv, cloneProject, projectRoot, startUntilListening, stop, type FreshClone } from '../support/freshClone.ts';

/**
 * The README's quick start, followed literally on a clean copy: the two commands at the top of
 * README.md are parsed, not restated, so the README cannot drift from what works. The copy is a
 * `git clone` of the committed tree (what a newcomer gets). How the Databricks Apps platform
 * installs, builds and starts the same clone is test/deploy/platformSequence.test.ts.
 *
 * The test command is not run here (it would run this suite again); it is checked to be the
 * package's test script, which is what .ci/run runs.
 */
const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');

/** The commands of the first fenced block, comments stripped. */
function quickStartCommands(): string[] {
  const block = /^```(?:bash|sh)\n([\s\S]*?)^```/m.exec(readme);
  assert.ok(block, 'README.md has a shell code block');
  const before = readme.slice(0, block.index);
  assert.match(before.trim(), /^# [^\n]+$/, 'the commands are the first thing after the title');
  return block[1]!
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

describe('README quick start on a clean clone', { timeout: 420_000 }, () => {
  let clone: FreshClone;
  const commands = quickStartCommands();

  before(() => {
    clone = cloneProject('lakebase-api-quickstart-');
  });
  after(() => clone?.remove());

  test('the README opens with exactly the two commands, and the test command is the one CI runs', () => {
    assert.deepEqual(commands, ['npm install && npm start', 'npm test']);
    const pkg = JSON.parse(readFileSync(join(clone.dir, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.ok(pkg.scripts.test, 'package.json has a test script');
    const ci = readFileSync(join(clone.dir, '.ci/run'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    assert.ok(ci.includes(commands[1]!), `.ci/run runs "${commands[1]}"`);
  });

  test(`"${commands[0]}" as written starts the API`, async () => {
    // Exactly the README's line, through a shell; only where to listen and how much to seed differ.
    const started = await startUntilListening(
      'bash',
      ['-c', commands[0]!],
      clone.dir,
      cleanEnv({
        PORT: '0',
        SAMPLE_ROWS: '1200',
        EMBEDDED_PG_DATA_DIR: join(clone.work, 'data-readme'),
      }),
      240_000,
    );
    try {
      assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'locally it binds loopback');
      assert.ok(existsSync(join(clone.dir, 'node_modules/playwright-core')), 'npm install (no NODE_ENV) also installs devDependencies');
      const count = await fetch(`${started.url}/trips/count`);
      assert.equal(count.status, 200);
      assert.deepEqual(await count.json(), { total_trips: 1200 });
      const docs = await fetch(`${started.url}/docs/`);
      assert.equal(docs.status, 200);
    } finally {
      const stopped = await stop(started);
      assert.ok(stopped.graceful, `the server shut down cleanly:\n${started.output.join('').slice(-2000)}`);
    }
  });
});
