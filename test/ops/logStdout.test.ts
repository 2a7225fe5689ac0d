import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { pollUntil } from '../support/pollUntil.ts';

/**
 * The service's own stdout logger (lib/ops/logger.ts) writes lines in batches. A line must still
 * reach stdout soon while the process keeps running and idle, and every line must be there when
 * the process ends, normally or by a crash.
 */
const LOGGER = new URL('../../lib/ops/logger.ts', import.meta.url).href;

function run(script: string): { lines: string[]; exited: Promise<number | null>; send(text: string): void } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(LOGGER)};\n${script}`],
    {
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['pipe', 'pipe', 'ignore'],
    },
  );
  const lines: string[] = [];
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  return {
    lines,
    exited: new Promise((resolve) => child.on('close', resolve)),
    send: (text) => child.stdin.write(`${text}\n`),
  };
}

test('a line logged by an idle process reaches stdout within a second, without a flush or an exit', async () => {
  const child = run(`const logger = createLogger({ level: 'info' });
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text) => { if (text.trim() === 'log') logger.info({ n: 1 }, 'hello'); else process.exit(0); });`);
  child.send('log');
  const line = await pollUntil('the line on stdout', 1000, () => child.lines.find((l) => l.includes('"msg":"hello"')));
  assert.equal(JSON.parse(line).n, 1);
  child.send('exit');
  assert.equal(await child.exited, 0);
});

test('every line is on stdout when the process exits, and when it crashes', async () => {
  const exits = run(`const logger = createLogger({ level: 'info' });
for (let i = 0; i < 500; i++) logger.info({ i }, 'line');
process.exit(0);`);
  assert.equal(await exits.exited, 0);
  assert.equal(exits.lines.filter((l) => l.includes('"msg":"line"')).length, 500);

  const crashes = run(`const logger = createLogger({ level: 'info' });
for (let i = 0; i < 50; i++) logger.info({ i }, 'line');
setTimeout(() => { throw new Error('crash'); }, 1);`);
  assert.equal(await crashes.exited, 1);
  assert.equal(crashes.lines.filter((l) => l.includes('"msg":"line"')).length, 50);
});
