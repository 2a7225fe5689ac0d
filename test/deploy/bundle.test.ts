import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { loadConfig } from '../../lib/ground/config.ts';
import { appYamlSchema, bundleFileSchema, deployedAppSchema } from './bundleSchema.ts';

/**
 * app.yaml and the Databricks Asset Bundle, checked against the Databricks CLI's own bundle JSON
 * Schema (the part this bundle uses, cut from the CLI's published schema at the minimum version the
 * bundle requires: databricksCliBundleSchema.json), against the project's stricter one
 * (bundleSchema.ts), and against each other and the code: the merge `bundle deploy -t` performs,
 * the variables every target must resolve, and app.yaml's settings as the service reads them.
 */
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
type Yaml = Record<string, unknown>;

/** Parses strictly: duplicate keys and YAML errors fail the test instead of being merged silently. */
function readYaml(path: string): Yaml {
  const value: unknown = parse(readFileSync(path, 'utf8'), { uniqueKeys: true, strict: true, prettyErrors: true });
  assert.ok(value && typeof value === 'object' && !Array.isArray(value), `${path} is a YAML mapping`);
  return value as Yaml;
}

const ajv = new Ajv({ allErrors: true, strict: false });
function assertValid(schema: object, value: unknown, what: string): void {
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${what} breaks the documented structure:\n${ajv.errorsText(validate.errors, { separator: '\n' })}`);
}

/** The CLI's schema (strict: false, it carries editor keywords such as doNotSuggest). */
const cliSchema = JSON.parse(readFileSync(join(here, 'databricksCliBundleSchema.json'), 'utf8')) as { 'x-databricks-cli-version': string };
const cliAjv = new Ajv({ allErrors: true, strict: false });
cliAjv.addSchema(cliSchema, 'cli');
const cliDefinition = (name: string) => `cli#/$defs/github.com/databricks/cli/bundle/config/${name}`;

/**
 * Checks a value against a definition of the CLI's schema. Every value there may also be a
 * `${var...}` reference (a oneOf's second branch): its type and pattern failures are noise.
 */
function assertCliValid(ref: string, value: unknown, what: string): void {
  const validate = cliAjv.getSchema(ref);
  assert.ok(validate, `the CLI schema has ${ref}`);
  if (validate(value)) return;
  const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'oneOf' && !/\/oneOf\/1\/(type|pattern)$/.test(e.schemaPath));
  assert.fail(`${what} breaks the Databricks CLI ${cliSchema['x-databricks-cli-version']} bundle schema:\n${cliAjv.errorsText(errors, { separator: '\n' })}`);
}

/** The CLI's merge (libs/dyn/merge): maps merge with the later side winning, sequences concatenate. */
function merge(a: unknown, b: unknown): unknown {
  if (a === undefined || a === null) return b;
  if (b === undefined || b === null) return a;
  if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  if (typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = merge(out[k], v);
    return out;
  }
  return b;
}

/** Files matched by an include pattern of the form `dir/*.yml`, the only form used here. */
function expandInclude(pattern: string): string[] {
  const match = /^([\w./-]+)\/\*\.(ya?ml)$/.exec(pattern);
  assert.ok(match, `include pattern ${pattern} is of the form dir/*.yml`);
  const dir = join(root, match[1]!);
  return readdirSync(dir)
    .filter((f) => f.endsWith(`.${match[2]}`))
    .sort()
    .map((f) => join(dir, f));
}

/** Every `${var.name}` reference in a value. */
function variableReferences(value: unknown, found = new Set<string>()): Set<string> {
  if (typeof value === 'string') for (const m of value.matchAll(/\$\{var\.([\w-]+)\}/g)) found.add(m[1]!);
  else if (Array.isArray(value)) for (const v of value) variableReferences(v, found);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) variableReferences(v, found);
  return found;
}

/** Substitutes resolved variables, as the CLI does before deploying. */
function substitute(value: unknown, vars: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    const whole = /^\$\{var\.([\w-]+)\}$/.exec(value);
    if (whole) return vars[whole[1]!];
    return value.replace(/\$\{var\.([\w-]+)\}/g, (_, name: string) => String(vars[name]));
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  return value;
}

interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: string;
  value_from?: string;
}

const bundle = readYaml(join(root, 'databricks.yml'));
const included = ((bundle.include as string[] | undefined) ?? []).flatMap(expandInclude);
const appYaml = readYaml(join(root, 'app.yaml'));
const appYamlEnv = appYaml.env as EnvEntry[];
const declared = (bundle.variables ?? {}) as Record<string, { default?: unknown; description?: string }>;
const targets = (bundle.targets ?? {}) as Record<string, Yaml>;

/** The configuration `databricks bundle deploy -t <target>` works from, variables resolved from the given values. */
function resolveTarget(name: string, given: Record<string, string>): { app: Yaml; vars: Record<string, unknown> } {
  let merged: Yaml = { ...bundle };
  for (const file of included) merged = merge(merged, readYaml(file)) as Yaml;
  const target = targets[name]!;
  merged = merge(merged, { resources: target.resources }) as Yaml;
  const vars: Record<string, unknown> = {};
  for (const [varName, declaration] of Object.entries(declared)) {
    const override = (target.variables as Record<string, unknown> | undefined)?.[varName];
    const value = given[varName] ?? (override !== undefined && typeof override !== 'object' ? override : undefined) ?? declaration.default;
    // The CLI refuses to deploy while any declared variable lacks a value (SetVariables).
    assert.notEqual(value, undefined, `target ${name}: no value for required variable ${varName}`);
    vars[varName] = value;
  }
  const apps = (merged.resources as { apps: Record<string, Yaml> }).apps;
  assert.deepEqual(Object.keys(apps), ['lakebase_api']);
  return { app: substitute(apps.lakebase_api, vars) as Yaml, vars };
}

describe('app.yaml', () => {
  test('has the documented structure: command as an array, env entries with value or valueFrom', () => {
    assertValid(appYamlSchema, appYaml, 'app.yaml');
    assert.ok(Array.isArray(appYaml.command), 'command is a sequence, not a shell string');
  });

  test('the command starts the compiled server with plain node: no npm, shell, tsx or devDependency', () => {
    const command = appYaml.command as string[];
    assert.deepEqual(command, ['node', 'dist/server.js']);
    // Only DATABRICKS_APP_PORT is expanded in a command; nothing else may look like a variable.
    for (const arg of command) assert.doesNotMatch(arg.replaceAll('$DATABRICKS_APP_PORT', ''), /\$/);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
      scripts: Record<string, string>;
    };
    assert.equal(pkg.scripts['start:prod'], command.join(' '), 'npm run start:prod runs the same command');
    // The platform runs `npm run build` after an install without devDependencies: the compiler is a dependency.
    assert.match(pkg.scripts.build ?? '', /\btsc -p tsconfig\.build\.json$/);
    assert.ok(pkg.dependencies.typescript, 'typescript (the build) survives an install that skips devDependencies');
    assert.equal(pkg.dependencies.tsx, undefined, 'tsx is for development only');
    assert.ok(pkg.devDependencies.tsx);
    // dist/server.js is what tsconfig.build.json makes of server.ts.
    const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: Record<string, unknown>; include: string[] };
    assert.equal(join(String(build.compilerOptions.outDir), 'server.js'), command.at(-1));
    assert.equal(build.compilerOptions.rootDir, '.');
    assert.ok(build.include.includes('server.ts'));
    assert.equal(build.compilerOptions.rewriteRelativeImportExtensions, true, 'the `.ts` import specifiers become `.js`');
  });

  test('never holds a secret in a value', () => {
    for (const entry of appYamlEnv) {
      if (/SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_KEY|_KEY$/i.test(entry.name)) {
        assert.equal(entry.value, undefined, `${entry.name} must come from valueFrom, not value`);
      }
      if (entry.value !== undefined) {
        assert.doesNotMatch(entry.value, /^(dapi|dkea|dose)[0-9a-f]{16,}|eyJ[\w-]{10,}\.|:\/\/[^/\s]*:[^@/\s]+@/, `${entry.name} looks like a credential`);
      }
    }
  });

  test('names the Autoscaling endpoint by resource key, and every value is one the service accepts', () => {
    const endpoint = appYamlEnv.find((e) => e.name === 'LAKEBASE_ENDPOINT');
    assert.equal(endpoint?.valueFrom, 'postgres', 'LAKEBASE_ENDPOINT comes from the `postgres` resource');
    const env = Object.fromEntries(appYamlEnv.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    // The platform's own variables, as inside an app without DATABRICKS_APP_PORT.
    const config = loadConfig({ ...env, DATABRICKS_APP_NAME: 'lakebase-api' });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 8000);
    assert.deepEqual(
      {
        size: config.pool.size,
        overflow: config.pool.maxOverflow,
        timeout: config.pool.timeoutSeconds,
        command: config.pool.commandTimeoutSeconds,
        lifetime: config.pool.maxLifetimeSeconds,
      },
      { size: 5, overflow: 10, timeout: 30, command: 10, lifetime: 1800 },
    );
    assert.equal(config.cache.invalidation, 'local');
    // Each plain value is one the service reads (a typo in a name would silently do nothing).
    const known = readFileSync(join(root, 'lib/ground/config.ts'), 'utf8');
    for (const name of Object.keys(env)) assert.ok(known.includes(`'${name}'`), `${name} is a setting lib/ground/config.ts reads`);
  });
});

describe('Databricks Asset Bundle', () => {
  test("databricks.yml and every included file validate against the Databricks CLI's bundle schema", () => {
    assertCliValid('cli', bundle, 'databricks.yml');
    for (const file of included) assertCliValid('cli', readYaml(file), file);
  });

  test('requires the CLI version whose schema it was checked against: the first with app `postgres` resources', () => {
    const required = (bundle.bundle as { databricks_cli_version?: string }).databricks_cli_version;
    assert.equal(required, `>= ${cliSchema['x-databricks-cli-version']}`);
    // What makes that the minimum: the app resource kind the autoscaling target uses.
    const appResource = cliAjv.getSchema('cli#/$defs/github.com/databricks/databricks-sdk-go/service/apps.AppResource')!.schema as {
      oneOf: [{ properties: Record<string, unknown> }];
    };
    assert.ok(appResource.oneOf[0].properties.postgres, 'the schema has apps.AppResource.postgres');
  });

  test("an app override without the app's name is refused, by the CLI's schema and by ours", () => {
    const withoutName = structuredClone(bundle) as { targets: Record<string, { resources: { apps: Record<string, Yaml> } }> };
    delete withoutName.targets.autoscaling!.resources.apps.lakebase_api!.name;
    assert.throws(() => assertCliValid('cli', withoutName, 'databricks.yml without the name'), /must have required property 'name'/);
    assert.throws(() => assertValid(bundleFileSchema, withoutName, 'databricks.yml without the name'), /must have required property 'name'/);
  });

  test('databricks.yml and every included file have the documented structure', () => {
    assertValid(bundleFileSchema, bundle, 'databricks.yml');
    assert.ok(included.length > 0, 'the include patterns match files');
    for (const file of included) {
      const content = readYaml(file);
      assertValid(bundleFileSchema, content, file);
      assert.equal(content.bundle, undefined, `${file}: the bundle mapping belongs in databricks.yml`);
    }
  });

  test('variables: every reference is declared, targets only set declared ones, one default target', () => {
    const referenced = variableReferences([bundle, ...included.map(readYaml)]);
    for (const name of referenced) assert.ok(declared[name], `\${var.${name}} is declared under variables`);
    for (const [name, target] of Object.entries(targets)) {
      for (const varName of Object.keys((target.variables as object | undefined) ?? {})) {
        assert.ok(declared[varName], `target ${name} sets undeclared variable ${varName}`);
      }
    }
    assert.deepEqual(
      Object.entries(targets)
        .filter(([, t]) => t.default === true)
        .map(([n]) => n),
      ['autoscaling'],
    );
  });

  test('a variable left unset stops the deployment, as the CLI does', () => {
    assert.throws(() => resolveTarget('autoscaling', {}), /no value for required variable postgres_branch/);
    assert.throws(() => resolveTarget('provisioned', {}), /no value for required variable database_instance/);
  });

  test('autoscaling target: the app with a `postgres` resource (branch, database, CAN_CONNECT_AND_CREATE)', () => {
    const { app } = resolveTarget('autoscaling', {
      postgres_branch: 'projects/trips/branches/production',
      postgres_database: 'projects/trips/branches/production/databases/databricks-postgres',
    });
    assertValid(deployedAppSchema, app, 'the deployed app (autoscaling)');
    assertCliValid(cliDefinition('resources.App'), app, 'the deployed app (autoscaling)');
    assert.equal(app.name, 'lakebase-api');
    assert.match(String(app.name), /^[a-z0-9-]+$/);
    assert.deepEqual(app.resources, [
      {
        name: 'postgres',
        description: 'Lakebase Autoscaling database holding the trips table',
        postgres: {
          branch: 'projects/trips/branches/production',
          database: 'projects/trips/branches/production/databases/databricks-postgres',
          permission: 'CAN_CONNECT_AND_CREATE',
        },
      },
    ]);
    assert.equal(app.config, undefined, 'app.yaml applies as it is');
    assert.deepEqual(app.permissions, [{ level: 'CAN_USE', group_name: 'users' }]);
    // source_code_path is relative to the file that declares it and must be the app's root.
    const declaring = included.find((f) => readFileSync(f, 'utf8').includes('source_code_path'))!;
    const source = resolve(dirname(declaring), String(app.source_code_path));
    assert.equal(source, root);
    for (const file of ['package.json', 'package-lock.json', 'app.yaml', 'server.ts', 'tsconfig.build.json'])
      assert.ok(existsSync(join(source, file)), `${file} is deployed`);
  });

  test('provisioned target: a `database` resource with the instance, and app.yaml settings with the instance name', () => {
    const { app } = resolveTarget('provisioned', { database_instance: 'trips-instance' });
    assertValid(deployedAppSchema, app, 'the deployed app (provisioned)');
    assertCliValid(cliDefinition('resources.App'), app, 'the deployed app (provisioned)');
    assert.deepEqual(app.resources, [
      {
        name: 'database',
        description: 'Lakebase Provisioned database holding the trips table',
        database: { instance_name: 'trips-instance', database_name: 'databricks_postgres', permission: 'CAN_CONNECT_AND_CREATE' },
      },
    ]);
    // The bundle's config replaces app.yaml's for this target: it must be app.yaml's, with the
    // instance name where app.yaml reads the Autoscaling endpoint.
    const config = app.config as { command: string[]; env: EnvEntry[] };
    assert.deepEqual(config.command, appYaml.command);
    const expected = appYamlEnv.map((e) => (e.name === 'LAKEBASE_ENDPOINT' ? { name: 'DATABRICKS_DATABASE_INSTANCE', value: 'trips-instance' } : e));
    assert.deepEqual(config.env, expected);
  });
});
