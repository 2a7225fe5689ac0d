import { hash } from 'node:crypto';

/**
 * Names for compiled statements that recur, so each connection parses and plans them once
 * (node-postgres prepares a named statement on first use per connection). A query shape gets a
 * name the second time it is seen among the last SEEN_MAX shapes: a one-off (or hostile) variety
 * of shapes stays unnamed and costs no prepared statement. Connections are recycled
 * (DB_POOL_MAX_LIFETIME), which bounds what a connection keeps prepared.
 */
const SEEN_MAX = 1000;
const seen = new Map<string, string>();

export function statementName(text: string): string | undefined {
  const name = seen.get(text);
  if (name !== undefined) {
    // Refresh its place: the shapes in use stay named.
    seen.delete(text);
    seen.set(text, name);
    return name;
  }
  seen.set(text, `pgrst_${hash('sha1', text, 'base64url').slice(0, 20)}`);
  if (seen.size > SEEN_MAX) seen.delete(seen.keys().next().value as string);
  return undefined;
}
