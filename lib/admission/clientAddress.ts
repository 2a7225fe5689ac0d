import { BlockList, isIP } from 'node:net';

/**
 * TRUSTED_PROXIES: the addresses (or CIDR ranges) of the proxies in front of the service whose
 * `X-Forwarded-For` is believed. Everyone else's is ignored: any client can send the header.
 */
export function trustedProxies(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) as `10.0.0.1`. */
function plain(address: string): string {
  const trimmed = address.trim();
  return trimmed.startsWith('::ffff:') && isIP(trimmed.slice(7)) === 4 ? trimmed.slice(7) : trimmed;
}

function trusted(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client's address: the peer's, unless the peer is a trusted proxy; then `X-Forwarded-For` is
 * read from the right (each trusted proxy appends the address it received from), and the first
 * address no trusted proxy owns is the client. Only trusted hops are skipped, so a client cannot
 * choose its own identity by sending the header itself.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | undefined, proxies: BlockList): string | undefined {
  if (peer === undefined) return undefined;
  let client = plain(peer);
  if (!forwardedFor || !trusted(proxies, client)) return client;
  const hops = forwardedFor.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = plain(hops[i] ?? '');
    if (isIP(hop) === 0) return client; // a malformed entry: stop at the last address we could believe
    client = hop;
    if (!trusted(proxies, hop)) return client;
  }
  return client;
}
