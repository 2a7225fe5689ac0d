import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import type { Context } from '../context.ts';
import type { NeutralRequest, NeutralResponse } from '../http.ts';
import { createRouter, type Router } from '../router.ts';

export type LambdaEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2;
export type LambdaResult = APIGatewayProxyResult | APIGatewayProxyStructuredResultV2;

const isV2 = (event: LambdaEvent): event is APIGatewayProxyEventV2 => (event as APIGatewayProxyEventV2).version === '2.0';

function lowerCaseHeaders(
  single: Record<string, string | undefined> | null | undefined,
  multi?: Record<string, string[] | undefined> | null,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(single ?? {})) if (value !== undefined) headers[name.toLowerCase()] = value;
  for (const [name, values] of Object.entries(multi ?? {})) if (values?.length) headers[name.toLowerCase()] = values.join(', ');
  return headers;
}

function bodyOf(body: string | null | undefined, base64: boolean): Buffer | undefined {
  if (body === null || body === undefined || body === '') return undefined;
  return Buffer.from(body, base64 ? 'base64' : 'utf8');
}

/** REST API (payload 1.0): repeated query parameters arrive in `multiValueQueryStringParameters`. */
function queryStringV1(event: APIGatewayProxyEvent): string {
  const params = new URLSearchParams();
  if (event.multiValueQueryStringParameters) {
    for (const [name, values] of Object.entries(event.multiValueQueryStringParameters)) for (const v of values ?? []) params.append(name, v);
  } else {
    for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) if (value !== undefined) params.append(name, value);
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** The path the API sees: without the API Gateway stage, as the spec's paths have no stage. */
function pathOf(event: LambdaEvent): string {
  if (isV2(event)) {
    const stage = event.requestContext.stage;
    const raw = event.rawPath;
    return stage && stage !== '$default' && raw.startsWith(`/${stage}/`) ? raw.slice(stage.length + 1) : raw;
  }
  return event.path;
}

export function toNeutralRequest(event: LambdaEvent): NeutralRequest {
  if (isV2(event)) {
    const headers = lowerCaseHeaders(event.headers);
    // Payload 2.0 moves cookies out of the headers.
    if (event.cookies?.length) headers.cookie = event.cookies.join('; ');
    return {
      method: event.requestContext.http.method,
      url: `${pathOf(event)}${event.rawQueryString ? `?${event.rawQueryString}` : ''}`,
      headers,
      body: bodyOf(event.body, event.isBase64Encoded),
    };
  }
  return {
    method: event.httpMethod,
    url: `${pathOf(event)}${queryStringV1(event)}`,
    headers: lowerCaseHeaders(event.headers, event.multiValueHeaders),
    body: bodyOf(event.body, event.isBase64Encoded),
  };
}

const TEXTUAL = /^(application\/(json|problem\+json|javascript)|text\/)/;

export function toLambdaResult(response: NeutralResponse): LambdaResult {
  const { body } = response;
  const contentType = response.headers['content-type'] ?? '';
  // Binary bodies (the docs' images) travel base64-encoded; text goes as is.
  const binary = Buffer.isBuffer(body) && !TEXTUAL.test(contentType);
  return {
    statusCode: response.status,
    headers: response.headers,
    body: body === undefined ? '' : binary ? (body as Buffer).toString('base64') : body.toString(),
    isBase64Encoded: binary,
  };
}

/**
 * An AWS Lambda handler for API Gateway HTTP APIs (payload 2.0) and REST APIs (1.0) proxy events.
 * `createContext` runs once per container, on the first invocation, and the context (pool, cache,
 * token manager) and router are reused by every later one; a failed cold start is retried on the
 * next invocation instead of poisoning the container.
 */
export function createLambdaHandler(createContext: () => Promise<Context>): (event: LambdaEvent) => Promise<LambdaResult> {
  let runtime: Promise<{ router: Router; maxBodyBytes: number }> | undefined;
  return async (event) => {
    runtime ??= createContext().then(
      (ctx) => ({ router: createRouter(ctx), maxBodyBytes: ctx.config.maxBodyBytes }),
      (err: unknown) => {
        runtime = undefined;
        throw err;
      },
    );
    const { router, maxBodyBytes } = await runtime;
    const request = toNeutralRequest(event);
    if (request.body && request.body.length > maxBodyBytes) request.body = request.body.subarray(0, maxBodyBytes + 1);
    return toLambdaResult(await router.handle(request));
  };
}
