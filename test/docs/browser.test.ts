import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Server } from 'node:http';
import { createHttp2StreamHandler } from '../../lib/http/adapters/http2.ts';
import { acceptH2c } from '../../lib/http/dualProtocolServer.ts';
import { createHttpServer } from '../../lib/http/httpServer.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/**
 * The interactive docs in a real browser: Debian's Chromium (installed by .ci/run), driven by
 * playwright-core, against the service listening on loopback. No downloaded browser build, no
 * skipping: without Chromium this suite fails and says how to install it.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = join(root, 'test-artifacts');

describe('interactive docs in headless Chromium', { timeout: 120_000 }, () => {
  let service: TestService;
  let server: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let profileDir: string;
  const requested: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`);
    service = await startTestService({ rows: 500 });
    // The listener as server.ts builds it.
    server = acceptH2c(
      createHttpServer(service.app, { maxHeaderBytes: service.ctx.config.maxHeaderBytes }),
      createHttp2StreamHandler(service.router, { maxBodyBytes: service.ctx.config.maxBodyBytes }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

    profileDir = mkdtempSync(join(tmpdir(), 'lakebase-api-chromium-'));
    // A fresh profile each run; launchPersistentContext passes it as --user-data-dir.
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        '--no-sandbox', // CI runs as root, where Chromium's sandbox cannot start
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (error) => pageErrors.push(error.message));
    mkdirSync(artifacts, { recursive: true });
  });

  after(async () => {
    await context?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    await service?.close();
  });

  test('/docs renders from the service itself and lists every operation', async () => {
    const response = await page.goto(`${base}/docs`);
    assert.equal(response?.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/docs/');
    await page.locator('.opblock').first().waitFor();
    await page.locator('.info .title').filter({ hasText: 'Lakebase API' }).waitFor();

    const listed = await page
      .locator('.opblock .opblock-summary')
      .evaluateAll((summaries) =>
        summaries.map(
          (s) => `${s.querySelector('.opblock-summary-method')?.textContent?.trim()} ${s.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`,
        ),
      );
    const documented = service.router.operations.map((op) => `${op.method} ${op.template}`);
    assert.deepEqual([...listed].sort(), [...documented].sort(), 'every operation in the OpenAPI document, and nothing else');

    for (const url of requested) assert.equal(new URL(url).origin, base, `${url}: every asset comes from the service (no CDN)`);
    assert.deepEqual(pageErrors, []);
    await page.screenshot({ path: join(artifacts, 'docs-operations.png') });
  });

  test('GET /trips/{trip_id}: the documented examples show, and "Try it out" gets a 200 from the running service', async () => {
    const operation = page.locator('.opblock-get').filter({ has: page.locator('.opblock-summary-path[data-path="/trips/{trip_id}"]') });
    await operation.locator('.opblock-summary').click();
    const body = operation.locator('.opblock-body');
    await body.waitFor();

    // The documented example of the 200 response (a trip), rendered from the spec.
    const example = body.locator('.responses-table .response[data-code="200"] .example, .responses-table .response[data-code="200"] .highlight-code').first();
    await example.waitFor();
    assert.match((await example.textContent()) ?? '', /pickup_datetime/);

    // tryItOutEnabled opens the form already; older layouts need the button.
    const tryOut = body.locator('button.try-out__btn');
    if ((await tryOut.count()) > 0 && /try it out/i.test((await tryOut.textContent()) ?? '')) await tryOut.click();
    const input = body.locator('tr[data-param-name="trip_id"] input');
    await input.fill('123');
    await body.locator('button.execute').click();

    const live = body.locator('.live-responses-table');
    const status = live.locator('.response .response-col_status').first();
    await status.filter({ hasText: /\d{3}/ }).waitFor({ timeout: 30_000 });
    assert.equal((await status.textContent())?.trim(), '200');
    const responseBody = live.locator('.response-col_description .microlight, .response-col_description pre').first();
    const text = (await responseBody.textContent()) ?? '';
    assert.equal(JSON.parse(text).id, 123, `the response body is trip 123: ${text.slice(0, 200)}`);
    assert.ok(requested.includes(`${base}/trips/123`), 'the page called the service');

    // The operation from its header down to the live response: parameter, Execute, request URL, 200 and body.
    const top = await operation.evaluate((el) => el.getBoundingClientRect().top + window.scrollY);
    const box = await live.evaluate((el) => {
      const r = el.getBoundingClientRect();
      return { x: r.left, bottom: r.bottom + window.scrollY };
    });
    const left = await operation.evaluate((el) => el.getBoundingClientRect());
    await page.screenshot({
      path: join(artifacts, 'docs-try-it-out.png'),
      fullPage: true,
      clip: { x: left.left, y: top, width: left.width, height: box.bottom - top + 8 },
    });
    assert.deepEqual(pageErrors, []);
  });
});
