import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import { projectFormatter } from './formatGenerated.ts';
import { generateTable, writtenFor } from './generateTable.ts';
import { buildManifest, manifestPath } from './manifest.ts';
import { refreshTable } from './refresh.ts';
import { connectAsTheService } from './serviceConnection.ts';

const USAGE = `Usage: npm run add-table -- <schema>.<table> [--path NAME] [--write] [--force]
       npm run add-table -- <schema>.<table> --refresh [--path NAME] [--force]

Reads the table from the database the service is configured for (nothing set: the embedded
PostgreSQL) and writes its API: handlers in functions/, openapi/<path>.ts, their registration,
and test/functions/<path>.test.ts.

  --path NAME   URL path and file names (default: the table name)
  --write       also POST, PATCH and DELETE
  --force       overwrite files an earlier run wrote
  --refresh     read the table again and rewrite its metadata module, spec entries and test
                (columns added, dropped or retyped), never its handlers nor what you narrowed in
                functions/<singular>Dialect.ts; with --force, even when the files it rewrites were
                edited by hand`;

/**
 * Routes the new operations would take that the current document gives to other operations. The
 * document is loaded only here: --refresh never needs the project's other tables to load.
 */
async function routesTaken(result: Awaited<ReturnType<typeof generateTable>>): Promise<string[]> {
  const { buildOpenApiDocument } = await import('../../openapi/document.ts');
  const ours = new Set(Object.values(result.plan.operationIds));
  const paths = (buildOpenApiDocument('0').paths ?? {}) as Record<string, Record<string, { operationId?: string }>>;
  return result.endpoints
    .filter(({ method, path }) => {
      const existing = paths[path]?.[method.toLowerCase()];
      return existing !== undefined && !ours.has(existing.operationId ?? '');
    })
    .map(({ method, path }) => `${method} ${path}`);
}

const parseCommandLine = () =>
  parseArgs({
    allowPositionals: true,
    options: {
      path: { type: 'string' },
      write: { type: 'boolean' },
      force: { type: 'boolean' },
      refresh: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine();
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 1;
  }
  if (parsed.values.help || parsed.positionals.length !== 1) {
    console.error(USAGE);
    return parsed.values.help ? 0 : 1;
  }
  dotenv.config({ quiet: true });
  const root = resolve(process.cwd());
  if (parsed.values.refresh && parsed.values.write) {
    console.error('--refresh keeps the options of the first run: leave out --write');
    return 1;
  }
  const { pool, close } = await connectAsTheService(process.env);
  // In the project's format: generated code is linted like the rest (tools/addTable/formatGenerated.ts).
  const format = projectFormatter(root) ?? ((_path: string, text: string) => text);
  try {
    if (parsed.values.refresh) {
      const outcome = await refreshTable(root, pool, parsed.positionals[0]!, { path: parsed.values.path, force: parsed.values.force === true, format });
      (outcome.ok ? console.log : console.error)(outcome.text);
      return outcome.ok ? 0 : 1;
    }
    const result = await generateTable(pool, parsed.positionals[0]!, { path: parsed.values.path, writes: parsed.values.write === true });
    const existing = result.files.filter((f) => existsSync(join(root, f.path)));
    // --force replaces what add-table wrote for this table, never a hand-written file of the same name.
    const ours = (text: string) => writtenFor(text, result.plan.table.schema, result.plan.table.table);
    const foreign = existing.filter((f) => !ours(readFileSync(join(root, f.path), 'utf8')));
    if (foreign.length > 0) {
      console.error(`${foreign.map((f) => f.path).join(', ')} exist and were not written by add-table for this table: choose another --path`);
      return 1;
    }
    if (existing.length > 0 && !parsed.values.force) {
      console.error(`Not overwriting ${existing.map((f) => f.path).join(', ')}: they exist (an earlier run?). Re-run with --force to replace them.`);
      return 1;
    }
    // A route the service already answers (say /trips/count for --path trips) would be silently shadowed.
    const taken = await routesTaken(result);
    if (taken.length > 0) {
      console.error(`${taken.join(', ')} already answered by another operation: choose another --path`);
      return 1;
    }
    const written = new Map<string, string>();
    for (const file of result.files) {
      mkdirSync(dirname(join(root, file.path)), { recursive: true });
      written.set(file.path, format(file.path, file.text));
      writeFileSync(join(root, file.path), written.get(file.path)!);
    }
    // What --refresh needs: the table, the options, the columns seen and each file as written.
    const manifest = manifestPath(result.plan.path);
    writeFileSync(
      join(root, manifest),
      format(manifest, `${JSON.stringify(buildManifest(result.plan, { write: parsed.values.write === true }, written), null, 2)}\n`),
    );
    for (const registration of result.registrations) {
      const path = join(root, registration.file);
      writeFileSync(path, format(registration.file, registration.apply(readFileSync(path, 'utf8'))));
    }
    console.log(result.report);
    return 0;
  } finally {
    await close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // One line: a missing table, a refused login, a bad setting.
    console.error(err instanceof ConfigError || err instanceof Error ? `add-table: ${err.message}` : `add-table: ${String(err)}`);
    process.exitCode = 1;
  },
);
