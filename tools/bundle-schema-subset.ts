/**
 * Cuts the part of the Databricks CLI's bundle JSON Schema this project's bundle uses out of the
 * CLI's published schema, for test/deploy/bundle.test.ts (the test machine has no network and no CLI):
 *
 *   git -C <databricks/cli clone> show v0.294.0:bundle/schema/jsonschema.json > /tmp/cli-schema.json
 *   npx tsx tools/bundle-schema-subset.ts /tmp/cli-schema.json v0.294.0 > test/deploy/databricksCliBundleSchema.json
 *
 * Every definition the root reaches is kept as the CLI publishes it, except the resource kinds
 * and settings this bundle does not use (jobs, pipelines, clusters, ...): those become `{}`
 * (anything goes), so the subset never refuses what the CLI accepts, and stays small.
 */
import { readFileSync } from 'node:fs';

type Json = Record<string, unknown>;
const [schemaPath, version] = process.argv.slice(2);
if (!schemaPath || !version) {
  console.error('usage: tsx tools/bundle-schema-subset.ts <cli jsonschema.json> <cli version tag>');
  process.exit(2);
}
const full = JSON.parse(readFileSync(schemaPath, 'utf8')) as Json & { $defs: Json };

/** Definitions kept whole: the bundle's own settings, variables, apps and what apps refer to. */
const KEPT = [
  /^(bool|string|int|int64|float64|interface)$/,
  /^github\.com\/databricks\/cli\/bundle\/config\.(Bundle|Target|Resources|Workspace|Git|Deployment|Lock|Mode|Sync|Presets)$/,
  /^github\.com\/databricks\/cli\/bundle\/config\/variable\./,
  /^github\.com\/databricks\/cli\/bundle\/config\/resources\.(App|AppConfig|AppEnvVar|AppPermission|Permission|Lifecycle)$/,
  /^github\.com\/databricks\/databricks-sdk-go\/service\/(apps|iam)\./,
];
const kept = (name: string) => KEPT.some((re) => re.test(name.replace(/^(map|slice)\//, '')));

function lookup(pointer: string): unknown {
  let node: unknown = full.$defs;
  for (const part of pointer.split('/')) node = (node as Json)[part];
  return node;
}

const subset: Json = {};
function place(pointer: string, value: unknown): void {
  const parts = pointer.split('/');
  let node = subset;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Json;
  }
  node[parts.at(-1)!] = value;
}

const seen = new Set<string>();
function visit(value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) visit(item);
    return;
  }
  if (!value || typeof value !== 'object') return;
  for (const [key, child] of Object.entries(value)) {
    if (key === '$ref' && typeof child === 'string') {
      const pointer = child.replace(/^#\/\$defs\//, '');
      if (seen.has(pointer)) continue;
      seen.add(pointer);
      if (kept(pointer)) {
        const definition = lookup(pointer);
        place(pointer, definition);
        visit(definition);
      } else {
        place(pointer, { $comment: 'not used by this bundle: left out of the subset, anything is accepted' });
      }
    } else visit(child);
  }
}
const { $defs: _defs, ...root } = full;
visit(root);
const out = {
  $comment: `Subset of bundle/schema/jsonschema.json from github.com/databricks/cli at ${version}, cut by tools/bundle-schema-subset.ts.`,
  'x-databricks-cli-version': version.replace(/^v/, ''),
  ...root,
  $defs: subset,
};
process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
