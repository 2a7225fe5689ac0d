import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';
import request from 'supertest';
import { createExpressApp } from '../../lib/http/adapters/express.ts';
import { createFetchHandler } from '../../lib/http/adapters/fetch.ts';
import { createLambdaHandler, type LambdaResult } from '../../lib/http/adapters/lambda.ts';
import type { Context } from '../../lib/http/serviceContext.ts';
import { createRouter } from '../../lib/http/router.ts';
import { createServiceServer } from '../../lib/http/serviceServer.ts';
import { apiService } from '../../functions/index.ts';

/** One HTTP exchange in a runtime-neutral shape, so one behaviour suite can run through every adapter. */
export interface Exchange {
  status: number;
  headers: Record<string, string>;
  text: string;
}

export interface SendOptions {
  headers?: Record<string, string>;
  body?: string;
}

export interface Transport {
  name: string;
  send(method: string, url: string, options?: SendOptions): Promise<Exchange>;
}

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../adapters/fixtures/${name}`, import.meta.url), 'utf8')) as T;

function lowerCase(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) out[name.toLowerCase()] = String(value);
  return out;
}

export function expressTransport(ctx: Context): Transport {
  const app = createExpressApp(createRouter(apiService, ctx), { maxBodyBytes: ctx.config.maxBodyBytes });
  return {
    name: 'express',
    async send(method, url, options = {}) {
      let req = request(app)[method.toLowerCase() as 'get'](url);
      for (const [name, value] of Object.entries(options.headers ?? {})) req = req.set(name, value);
      if (options.body !== undefined) req = req.send(options.body);
      const res = await req.buffer(true).parse((response, callback) => {
        let data = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          data += chunk;
        });
        response.on('end', () => callback(null, data));
      });
      return { status: res.status, headers: lowerCase(res.headers as Record<string, unknown>), text: typeof res.body === 'string' ? res.body : '' };
    },
  };
}

export function fetchTransport(ctx: Context): Transport {
  const handler = createFetchHandler(apiService, ctx);
  return {
    name: 'fetch',
    async send(method, url, options = {}) {
      const response = await handler(new Request(`http://127.0.0.1${url}`, { method, headers: options.headers, body: options.body }));
      const headers: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        headers[name] = value;
      });
      return { status: response.status, headers, text: await response.text() };
    },
  };
}

function fromLambda(result: LambdaResult): Exchange {
  const { body } = result;
  return {
    status: result.statusCode,
    headers: lowerCase(result.headers as Record<string, unknown>),
    text: result.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body,
  };
}

/** API Gateway HTTP API (payload 2.0), bodies sent base64-encoded as API Gateway does for binary media. */
export function lambdaV2Transport(ctx: Context): Transport {
  const handler = createLambdaHandler(apiService, async () => ctx);
  const template = fixture<APIGatewayProxyEventV2>('apigw-v2-event.json');
  return {
    name: 'lambda-v2',
    async send(method, url, options = {}) {
      const [path, query = ''] = url.split('?') as [string, string?];
      const event: APIGatewayProxyEventV2 = {
        ...template,
        rawPath: path,
        rawQueryString: query,
        headers: { ...template.headers, ...lowerCase(options.headers) },
        requestContext: { ...template.requestContext, http: { ...template.requestContext.http, method, path } },
        body: options.body === undefined ? undefined : Buffer.from(options.body).toString('base64'),
        isBase64Encoded: options.body !== undefined,
      };
      return fromLambda(await handler(event));
    },
  };
}

/** API Gateway REST API (payload 1.0): query parameters arrive as multi-value maps. */
export function lambdaV1Transport(ctx: Context): Transport {
  const handler = createLambdaHandler(apiService, async () => ctx);
  const template = fixture<APIGatewayProxyEvent>('apigw-v1-event.json');
  return {
    name: 'lambda-v1',
    async send(method, url, options = {}) {
      const [path, query = ''] = url.split('?') as [string, string?];
      const multi: Record<string, string[]> = {};
      for (const [name, value] of new URLSearchParams(query)) multi[name] = [...(multi[name] ?? []), value];
      const single = Object.fromEntries(Object.entries(multi).map(([name, values]) => [name, values[values.length - 1]!]));
      const headers = { ...template.headers, ...(options.headers ?? {}) };
      const event: APIGatewayProxyEvent = {
        ...template,
        path,
        httpMethod: method,
        headers,
        multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v as string]])),
        queryStringParameters: query ? single : null,
        multiValueQueryStringParameters: query ? multi : null,
        body: options.body ?? null,
        isBase64Encoded: false,
      };
      return fromLambda(await handler(event));
    },
  };
}

/**
 * HTTP/2 without TLS (h2c, as the Databricks Apps proxy may speak) to the server `npm start`
 * builds, on a loopback port: one session for all requests. Close it at the end of the suite.
 */
export async function h2cTransport(ctx: Context): Promise<Transport & { close(): Promise<void> }> {
  const server = createServiceServer(createRouter(apiService, ctx), ctx.config);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  session.on('error', () => undefined); // a failed request reports itself
  return {
    name: 'h2c',
    send(method, url, options = {}) {
      return new Promise<Exchange>((resolve, reject) => {
        const stream = session.request({ ':method': method, ':path': url, ...lowerCase(options.headers) }, { endStream: options.body === undefined });
        let status = 0;
        const headers: Record<string, string> = {};
        const chunks: Buffer[] = [];
        stream.on('response', (received) => {
          status = Number(received[':status']);
          for (const [name, value] of Object.entries(received)) if (!name.startsWith(':') && value !== undefined) headers[name] = String(value);
        });
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => resolve({ status, headers, text: Buffer.concat(chunks).toString('utf8') }));
        stream.on('error', reject);
        if (options.body !== undefined) stream.end(options.body);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        session.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
