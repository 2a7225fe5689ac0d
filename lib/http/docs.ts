import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { NeutralResponse } from '../ground/neutralRequest.ts';

/**
 * Interactive docs (Swagger UI) served from the app itself: a Databricks App or an air-gapped
 * laptop has no CDN. Asset URLs are relative, so the page also works under a path prefix
 * (an API Gateway stage, a reverse proxy).
 */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

/** The files /docs reads from swagger-ui-dist, for a bundle that has to ship them. */
export const DOCS_ASSET_FILES: readonly string[] = Object.keys(ASSETS);

/** No inline scripts: the CSP below forbids them. Swagger UI needs inline styles. */
const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self' data:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join('; ');

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Lakebase API – interactive docs</title>
  <link rel="stylesheet" href="swagger-ui.css">
  <link rel="icon" type="image/png" href="favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script src="swagger-ui-standalone-preset.js"></script>
  <script src="init.js"></script>
</body>
</html>
`;

const INIT_JS = `window.ui = SwaggerUIBundle({
  url: new URL('../openapi.json', window.location.href).href,
  dom_id: '#swagger-ui',
  deepLinking: true,
  displayRequestDuration: true,
  tryItOutEnabled: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  layout: 'StandaloneLayout'
});
`;

// Found on first use, not at import: a bundle (the Lambda one) starts even if it ships without them.
let assetDir: string | undefined;
const loaded = new Map<string, Buffer>();

function asset(name: string): Buffer {
  let bytes = loaded.get(name);
  if (!bytes) {
    assetDir ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
    bytes = readFileSync(join(assetDir, name));
    loaded.set(name, bytes);
  }
  return bytes;
}

const docsHeaders = (contentType: string, cacheSeconds: number): Record<string, string> => ({
  'content-type': contentType,
  'cache-control': cacheSeconds > 0 ? `public, max-age=${cacheSeconds}` : 'no-cache',
  'content-security-policy': DOCS_CSP,
  'x-frame-options': 'SAMEORIGIN', // frame-ancestors 'self' for browsers without CSP level 2
});

/** Answers `/docs` and its assets; undefined for any other path. */
export function serveDocs(path: string): NeutralResponse | undefined {
  if (path === '/docs') return { status: 308, headers: { location: 'docs/', 'content-type': 'text/plain; charset=utf-8' }, body: 'docs/' };
  if (!path.startsWith('/docs/')) return undefined;
  const name = path.slice('/docs/'.length);
  if (name === '' || name === 'index.html') return { status: 200, headers: docsHeaders('text/html; charset=utf-8', 0), body: INDEX_HTML };
  if (name === 'init.js') return { status: 200, headers: docsHeaders('text/javascript; charset=utf-8', 0), body: INIT_JS };
  const contentType = ASSETS[name];
  if (!contentType) return undefined;
  return { status: 200, headers: docsHeaders(contentType, 3600), body: asset(name) };
}
