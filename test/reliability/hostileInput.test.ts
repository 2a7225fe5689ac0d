import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createSchemaCompiler } from '../../lib/http/routing/schemaCompiler.ts';
import { reportFigures } from '../support/figures.ts';
import { listenOnLoopback, type RunningHttpServer } from '../support/httpHarness.ts';
import { hostileRequests, malformedHttp, randomHostileRequests, type HostileRequest } from '../support/hostileRequests.ts';
import { watchProcessFaults } from '../support/processFaults.ts';
import { sendRaw, type RawResponse } from '../support/rawHttp.ts';
import { credentialsToSend, SecretScanner } from '../support/secretScan.ts';
import { startTestService, type TestService } from '../support/testService.ts';

/**
 * Thousands of malformed requests, generated from the OpenAPI document (router.document) and sent
 * as raw bytes to the real HTTP server on loopback: never a 5xx, every error a valid problem+json
 * with the security headers, every documented operation answering only what the document
 * declares, no write accepted, and the table unchanged to the byte afterwards.
 */
const RANDOM_COMBINATIONS = 2500;
const CONCURRENCY = 16;

let service: TestService;
let http: RunningHttpServer;
const faults = watchProcessFaults();
const sent = credentialsToSend();

before(async () => {
  service = await startTestService({ rows: 2000, env: { DB_POOL_SIZE: '2', DB_MAX_OVERFLOW: '4' } });
  http = await listenOnLoopback(service);
});
after(async () => {
  await http?.close();
  await service?.close();
  faults.stop();
});

async function tableChecksum(): Promise<string> {
  const { rows } = await service.database.admin.query<{ sum: string }>("SELECT md5(string_agg(t::text, ',' ORDER BY id)) AS sum FROM nyc_train_synced t");
  return rows[0]!.sum;
}

/** Adds the credentials a Databricks App request carries, right after the request line. */
function withCredentials(bytes: Buffer): Buffer {
  const lineEnd = bytes.indexOf('\r\n');
  if (lineEnd === -1) return bytes;
  const extra = Object.entries(sent.headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return Buffer.concat([bytes.subarray(0, lineEnd + 2), Buffer.from(extra), bytes.subarray(lineEnd + 2)]);
}

test('thousands of malformed requests from the OpenAPI document: no 5xx, every error a problem+json, the table unchanged', async () => {
  const { document } = service.router;
  const limits = service.ctx.config;
  const requests: HostileRequest[] = [
    ...hostileRequests(document, limits),
    ...malformedHttp(limits),
    ...randomHostileRequests(document, limits, RANDOM_COMBINATIONS, 20261125),
  ];
  const validateProblem = createSchemaCompiler(document).compile({ $ref: '#/components/schemas/Problem' });
  const scanner = new SecretScanner({ ...sent.secrets, 'database password': service.database.server.password });
  const checksumBefore = await tableChecksum();

  const byStatus: Record<string, number> = {};
  const byCategory: Record<string, number> = {};
  const failures: string[] = [];
  const fail = (request: HostileRequest, res: RawResponse, why: string) => {
    if (failures.length < 40) failures.push(`[${request.category}] ${request.description} → ${res.status}: ${why} ${res.body.slice(0, 160)}`);
  };
  let noAnswer = 0;
  let contractChecked = 0;
  let slowest = 0;

  const check = (request: HostileRequest, res: RawResponse) => {
    byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
    byCategory[request.category] = (byCategory[request.category] ?? 0) + 1;
    slowest = Math.max(slowest, res.ms);
    scanner.scanResponse(`[${request.category}] ${request.description}`, res.headers, res.body);
    if (res.timedOut) return fail(request, res, 'still waiting for an answer after 5 s');
    if (res.status === 0) {
      noAnswer++;
      return fail(request, res, 'no HTTP answer');
    }
    if (res.status >= 500) return fail(request, res, 'a 5xx');
    if (res.headers['x-powered-by'] !== undefined) fail(request, res, 'X-Powered-By');
    for (const [name, value] of [
      ['x-content-type-options', 'nosniff'],
      ['referrer-policy', 'no-referrer'],
    ] as const) {
      if (res.headers[name] !== value) fail(request, res, `${name} is ${res.headers[name]}`);
    }
    if (!res.headers['content-security-policy']) fail(request, res, 'no CSP');
    if (res.status >= 400) {
      if (!/^application\/problem\+json/.test(res.headers['content-type'] ?? '')) return fail(request, res, `content type ${res.headers['content-type']}`);
      let body: unknown;
      try {
        body = JSON.parse(res.body);
      } catch {
        return fail(request, res, 'problem body is not JSON');
      }
      if (!validateProblem(body)) return fail(request, res, `invalid problem ${JSON.stringify(validateProblem.errors)}`);
      if ((body as { status: number }).status !== res.status) fail(request, res, 'problem status differs from the HTTP status');
    } else if (!['GET', 'HEAD', 'OPTIONS'].includes(request.method.toUpperCase())) {
      fail(request, res, `a ${request.method} was accepted`);
    }
    // Answered by the router (not node's parser): what the document declares for that operation.
    const target = /^\S+ (\S+) HTTP/.exec(request.bytes.subarray(0, 2048).toString('latin1'))?.[1];
    if (res.headers['x-request-id'] && request.template && target?.startsWith('/')) {
      try {
        contractChecked++;
        service.contract.check(request.method.toUpperCase(), target, { status: res.status, headers: res.headers, text: res.body });
      } catch (err) {
        fail(request, res, `contract: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  };

  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < requests.length) {
        const request = requests[next++]!;
        check(request, await sendRaw(http.port, withCredentials(request.bytes), 5000));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const checksumAfter = await tableChecksum();
  for (const line of service.logs.lines) scanner.scan('log', line);
  const logged5xx = service.logs.lines.filter((l) => /"status":5\d\d/.test(l)).length;
  const serverErrors = Object.entries(byStatus)
    .filter(([s]) => Number(s) >= 500)
    .reduce((a, [, n]) => a + n, 0);

  reportFigures('hostile input', {
    requests: requests.length,
    seconds,
    ...Object.fromEntries(Object.entries(byCategory).map(([c, n]) => [c.replace(/ /g, '_'), n])),
    ...Object.fromEntries(Object.entries(byStatus).map(([s, n]) => [`status_${s}`, n])),
    server_errors: serverErrors,
    no_answer: noAnswer,
    failures: failures.length,
    contract_checked: contractChecked,
    slowest_ms: Math.round(slowest),
    logged_5xx: logged5xx,
    table_unchanged: checksumAfter === checksumBefore,
    secret_hits: scanner.hits.length,
  });

  assert.deepEqual(faults.faults, []);
  assert.deepEqual(failures, [], 'every answer is a non-5xx; errors are valid problems with the security headers; nothing undeclared');
  assert.equal(logged5xx, 0);
  assert.equal(checksumAfter, checksumBefore, 'the table content is unchanged');
  assert.ok(requests.length > 3000, `thousands of requests (${requests.length})`);
  assert.deepEqual(scanner.hits, [], 'no secret in any log line or response');
});
