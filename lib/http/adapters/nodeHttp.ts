import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Router } from '../router.ts';
import { StreamedBody } from '../../ground/neutralRequest.ts';
import { NodeNeutralRequest, readBody, uploadTooLarge, writeResponse } from './nodeMessages.ts';

/**
 * The router behind bare `node:http`, without Express: same rules, same bytes. It exists so the
 * benchmark can show what Express itself costs, and for hosts that want no framework at all.
 */
export function createNodeHttpHandler(router: Router, options: { maxBodyBytes: number }): RequestListener {
  return async (req: IncomingMessage, res: ServerResponse) => {
    let body: Buffer | undefined;
    try {
      body = await readBody(req, options.maxBodyBytes);
    } catch {
      res.destroy();
      return;
    }
    const response = await router.handle(new NodeNeutralRequest(req.method ?? 'GET', req.url ?? '/', req, body, res));
    if (res.headersSent || res.destroyed) {
      if (response.body instanceof StreamedBody) await response.body.cancel();
      return;
    }
    // Don't drain a huge upload: close the connection after the answer.
    writeResponse(res, response, uploadTooLarge(req, body, options.maxBodyBytes));
  };
}
