import { randomBytes } from 'node:crypto';

/**
 * Credentials a suite sends with its requests, as a Databricks App receives them (a bearer token,
 * the user's forwarded access token): random per run, so a hit can only mean that the service
 * copied one into a log line or a response.
 */
export function credentialsToSend(): { headers: Record<string, string>; secrets: Record<string, string> } {
  const bearer = `dapi${randomBytes(16).toString('hex')}`;
  const forwarded = `eyJhbGciOiJSUzI1NiJ9.${randomBytes(24).toString('base64url')}.${randomBytes(24).toString('base64url')}`;
  return {
    headers: { authorization: `Bearer ${bearer}`, 'x-forwarded-access-token': forwarded },
    secrets: { 'Authorization bearer token': bearer, 'X-Forwarded-Access-Token': forwarded },
  };
}

/** Scans text (log lines, response headers and bodies) for known secret values. */
export class SecretScanner {
  readonly hits: string[] = [];
  bytesScanned = 0;
  textsScanned = 0;

  constructor(private readonly secrets: Readonly<Record<string, string>>) {
    for (const [name, value] of Object.entries(secrets)) if (value.length < 8) throw new Error(`secret "${name}" is too short to scan for`);
  }

  scan(where: string, text: string): void {
    this.bytesScanned += text.length;
    this.textsScanned++;
    for (const [name, value] of Object.entries(this.secrets)) {
      if (text.includes(value) && this.hits.length < 20) this.hits.push(`${name} found in ${where}: ${text.slice(0, 200)}`);
    }
  }

  scanResponse(where: string, headers: Headers | Record<string, unknown> | undefined, body: string): void {
    const headerText = headers instanceof Headers ? [...headers].map(([k, v]) => `${k}: ${v}`).join('\n') : JSON.stringify(headers ?? {});
    this.scan(`${where} (response)`, `${headerText}\n${body}`);
  }
}
