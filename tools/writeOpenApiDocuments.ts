/**
 * Writes the OpenAPI document exactly as the service serves it at /openapi.json, once for each
 * access and auth setting (they change the security schemes and the 401/403 answers), into the
 * folder given (default .data/openapi/), without a database or any other setting. `npm run
 * lint:openapi` lints these files with Redocly and Spectral.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUTH_MODES } from '../lib/ground/authSettings.ts';
import { APP_VERSION } from '../lib/version.ts';
import { buildOpenApiDocument, type DocumentOptions } from '../openapi/document.ts';

const variants: Array<[string, DocumentOptions]> = [
  ...AUTH_MODES.map((auth): [string, DocumentOptions] => [`service-${auth}`, { access: 'service', auth }]),
  ['user-apps-proxy', { access: 'user', auth: 'apps-proxy' }],
];

const folder = process.argv[2] ?? join('.data', 'openapi');
rmSync(folder, { recursive: true, force: true });
mkdirSync(folder, { recursive: true });
for (const [name, options] of variants) {
  writeFileSync(join(folder, `${name}.json`), `${JSON.stringify(buildOpenApiDocument(APP_VERSION, options), null, 2)}\n`);
}
console.log(`${variants.length} OpenAPI documents in ${folder}/: ${variants.map(([name]) => name).join(', ')}`);
