/**
 * Headers every response carries, whatever produced it (the router, the docs, the HTTP server's
 * own errors). An API answer is data, never a page: nothing may sniff it into HTML, frame it, or
 * load anything on its behalf, and no URL of it leaks to other sites in a Referer. The docs set
 * their own, looser CSP and framing rule, which these defaults never override.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
};

export function addSecurityHeaders(headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers[name] ??= value;
}
