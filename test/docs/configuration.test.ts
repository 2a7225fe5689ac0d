import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * docs/configuration.md against the code: every variable a row documents is read somewhere, and
 * every variable the code reads has a row. What the code reads is found by scanning the source
 * (lib/ and server.ts), not from a hand-kept list, so a variable added on any branch is caught
 * wherever it is read.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOC = 'docs/configuration.md';

/** Where the service reads its environment: all of lib/ (any depth) and the entry point. */
const SOURCE_ROOTS = ['lib', 'server.ts'];

/**
 * Variables the code reads that docs/configuration.md deliberately does not document, each with
 * the reason. Empty today: every variable the service reads is a setting someone may need to set.
 */
const UNDOCUMENTED: Readonly<Record<string, string>> = {};

/**
 * Variables docs/configuration.md documents that the service's own code does not read, because a
 * dependency reads them from the environment itself (e.g. an SDK's standard variables), each with
 * the dependency. Empty today: the Databricks SDK's variables are also read by lib/lakebase/.
 */
const READ_BY_DEPENDENCIES: Readonly<Record<string, string>> = {};

/** Headers of the tables that document variables: one variable per row, its name alone in the first cell. */
const VARIABLE_TABLE_HEADER = /^\|\s*Variable\s*\|\s*Default\s*\|\s*Meaning\s*\|$/;

/** A name as environment variables are spelt here (upper case, digits, underscores). */
const NAME = '[A-Z][A-Z0-9_]*';
/** In a list of names (`['LAKEBASE_USER', 'PGUSER'].find(...)`): names with an underscore, or the libpq PG* ones. */
const LISTED_NAME = /^(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|PG[A-Z]+)$/;

function sourceFiles(): string[] {
  const files: string[] = [];
  for (const entry of SOURCE_ROOTS) {
    const path = join(root, entry);
    if (path.endsWith('.ts')) files.push(path);
    else for (const file of readdirSync(path, { recursive: true }) as string[]) if (file.endsWith('.ts')) files.push(join(path, file));
  }
  return files;
}

/** Block comments and whole-line `//` comments removed, so prose about variables does not count as reading them. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

/**
 * The variables one source file reads:
 * - `env.NAME`, `env?.NAME`, `process.env.NAME`, `env['NAME']`;
 * - a reader called with the environment and a name: `readInt(env, 'NAME', …)`, `nonEmpty(env, 'NAME')`;
 * - destructuring: `const { NAME } = env`;
 * - in a file that reads the environment, a list of names looked up in turn:
 *   `for (const name of ['DATABRICKS_DATABASE_PORT', 'PGPORT'])`.
 */
export function variablesRead(source: string): Set<string> {
  const code = withoutComments(source);
  const names = new Set<string>();
  const add = (pattern: RegExp) => {
    for (const match of code.matchAll(pattern)) names.add(match[1]!);
  };
  add(new RegExp(`\\benv\\??\\.(${NAME})\\b`, 'g'));
  add(new RegExp(`\\benv\\??\\.?\\[\\s*['"\`](${NAME})['"\`]\\s*\\]`, 'g'));
  add(new RegExp(`\\(\\s*(?:process\\.)?env\\s*,\\s*['"\`](${NAME})['"\`]`, 'g'));
  for (const match of code.matchAll(/\{([^{}]*)\}\s*=\s*(?:process\.)?env\b/g)) {
    for (const part of match[1]!.split(',')) {
      const name = part.split(':')[0]!.trim();
      if (new RegExp(`^${NAME}$`).test(name)) names.add(name);
    }
  }
  if (names.size > 0) {
    for (const list of code.matchAll(/\[((?:\s*['"][^'"]+['"]\s*,)*\s*['"][^'"]+['"]\s*),?\s*\]/g)) {
      const items = [...list[1]!.matchAll(/['"]([^'"]+)['"]/g)].map((m) => m[1]!);
      if (items.every((item) => LISTED_NAME.test(item))) for (const item of items) names.add(item);
    }
  }
  return names;
}

/** The variable names of docs/configuration.md's variable tables, with the line each is on. */
function documentedVariables(markdown: string): Map<string, number> {
  const documented = new Map<string, number>();
  const lines = markdown.split('\n');
  let inTable = false;
  let inFence = false;
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('```')) inFence = !inFence;
    if (inFence) return;
    if (VARIABLE_TABLE_HEADER.test(line)) {
      inTable = true;
      return;
    }
    if (!inTable) return;
    if (!line.startsWith('|')) {
      inTable = false;
      return;
    }
    if (/^\|[\s|:-]+\|$/.test(line)) return; // the separator row
    const first = line.split('|')[1]!.trim();
    const name = new RegExp(`^\`(${NAME})\`$`).exec(first);
    assert.ok(name, `${DOC}:${index + 1}: a variable row names one variable alone in its first cell, got "${first}"`);
    if (!documented.has(name[1]!)) documented.set(name[1]!, index + 1);
  });
  return documented;
}

function readByFile(): Map<string, string[]> {
  const read = new Map<string, string[]>();
  for (const file of sourceFiles()) {
    for (const name of variablesRead(readFileSync(file, 'utf8'))) {
      read.set(name, [...(read.get(name) ?? []), relative(root, file)]);
    }
  }
  return read;
}

test('the scanner finds the reads in each of their shapes', () => {
  const found = variablesRead(`
    // env.IN_A_COMMENT is prose
    const a = env.DIRECT ?? process.env.VIA_PROCESS;
    const b = env?.OPTIONAL;
    const c = env['BRACKETS'];
    const d = readInt(env, 'READER', 5, 1, 10);
    const { DESTRUCTURED, OTHER: renamed } = env;
    for (const name of ['LISTED_ONE', 'PGLISTED']) nonEmpty(env, name);
    const methods = ['GET', 'HEAD'];
  `);
  assert.deepEqual([...found].sort(), ['BRACKETS', 'DESTRUCTURED', 'DIRECT', 'LISTED_ONE', 'OPTIONAL', 'OTHER', 'PGLISTED', 'READER', 'VIA_PROCESS']);
});

test('the scan reaches the configuration, the Lakebase settings, the token manager and the database', () => {
  const read = readByFile();
  // One variable from each place that reads the environment: if a move hides one from the scan, say so.
  for (const name of ['PORT', 'CACHE_INVALIDATION', 'LAKEBASE_ENDPOINT', 'DATABRICKS_DATABASE_PORT', 'TOKEN_REFRESH_CRON', 'DATABASE_URL', 'NODE_ENV']) {
    assert.ok(read.has(name), `the source scan finds ${name}`);
  }
  assert.ok(read.size >= 40, `the scan finds the service's variables (found ${read.size})`);
});

test(`every variable the code reads is documented in ${DOC}`, () => {
  const documented = documentedVariables(readFileSync(join(root, DOC), 'utf8'));
  const missing = [...readByFile()]
    .filter(([name]) => !documented.has(name) && !(name in UNDOCUMENTED))
    .map(([name, files]) => `${name} (read in ${files.join(', ')})`);
  assert.deepEqual(missing, [], `add a row to ${DOC} for each, in the table of its concern: | \`NAME\` | default | meaning |`);
});

test(`every variable ${DOC} documents is read by the code`, () => {
  const documented = documentedVariables(readFileSync(join(root, DOC), 'utf8'));
  assert.ok(documented.size >= 40, `${DOC} has its variable tables (found ${documented.size} rows)`);
  const read = readByFile();
  const stale = [...documented].filter(([name]) => !read.has(name) && !(name in READ_BY_DEPENDENCIES)).map(([name, line]) => `${name} (${DOC}:${line})`);
  assert.deepEqual(stale, [], 'these rows document variables nothing reads: remove them, or read the variable');
});

test('the exceptions are not stale', () => {
  const read = readByFile();
  for (const [name, reason] of Object.entries(UNDOCUMENTED)) {
    assert.ok(read.has(name), `${name} is listed as undocumented (${reason}) but nothing reads it`);
  }
  const documented = documentedVariables(readFileSync(join(root, DOC), 'utf8'));
  for (const [name, dependency] of Object.entries(READ_BY_DEPENDENCIES)) {
    assert.ok(documented.has(name), `${name} is listed as read by ${dependency} but ${DOC} has no row for it`);
  }
});
