import type { Express } from 'express';
import type { RequestListener } from 'node:http';
import request from 'supertest';
import type { ContractChecker } from './contract.ts';

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read deep into any operation's JSON; the contract check validates every body against its OpenAPI schema instead.
  body: any;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** A JSON value, or a raw string sent as is. */
  body?: unknown;
  contentType?: string;
}

/**
 * A small client over supertest: every response it receives is checked against the OpenAPI
 * contract before the test sees it.
 */
export class ApiClient {
  constructor(
    private readonly app: Express | RequestListener,
    private readonly contract: ContractChecker,
  ) {}

  async send(method: string, url: string, options: RequestOptions = {}): Promise<ApiResponse> {
    let req = request(this.app)[method.toLowerCase() as 'get'](url);
    for (const [name, value] of Object.entries(options.headers ?? {})) req = req.set(name, value);
    if (options.body !== undefined) {
      const raw = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      req = req.set('content-type', options.contentType ?? 'application/json').send(raw);
    }
    // Keep the raw text: supertest only parses bodies of types it knows.
    const res = await req.buffer(true).parse((response, callback) => {
      let data = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        data += chunk;
      });
      response.on('end', () => callback(null, data));
    });
    const text = typeof res.body === 'string' ? res.body : '';
    const result: ApiResponse = {
      status: res.status,
      headers: res.headers as Record<string, string>,
      text,
      body: /json/.test(String(res.headers['content-type'])) && text ? JSON.parse(text) : undefined,
    };
    this.contract.check(method.toUpperCase(), url, result);
    return result;
  }

  get(url: string, options?: RequestOptions) {
    return this.send('GET', url, options);
  }

  post(url: string, body?: unknown, options: RequestOptions = {}) {
    return this.send('POST', url, { ...options, body });
  }
}
