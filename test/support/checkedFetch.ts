import type { ContractChecker } from './contract.ts';

/** One exchange a checked fetch saw: after its answer passed the contract check. */
export interface SeenExchange {
  method: string;
  url: string;
  status: number;
}

/**
 * A fetch for `@supabase/postgrest-js` (its `fetch` option) that checks every answer against the
 * OpenAPI contract before the client reads it, so a test driving the client still holds each
 * response to the document.
 */
export function contractCheckedFetch(contract: ContractChecker, seen?: (exchange: SeenExchange) => void): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const method = (init?.method ?? 'GET').toUpperCase();
    const text = await response.clone().text();
    contract.check(method, `${url.pathname}${url.search}`, { status: response.status, headers: Object.fromEntries(response.headers), text });
    seen?.({ method, url: `${url.pathname}${url.search}`, status: response.status });
    return response;
  };
}
