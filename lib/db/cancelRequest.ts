import { connect } from 'node:net';

/** The protocol's CancelRequest code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;
const GIVE_UP_MS = 2000;

/** What a connected node-postgres client learnt from BackendKeyData (not in @types/pg). */
interface BackendKey {
  host?: string;
  port?: number;
  processID?: number | null;
  secretKey?: number | null;
}

/**
 * Asks the server to cancel whatever statement a connection is running: the wire protocol's
 * CancelRequest, sent on a short connection of its own with no login (what psql does on Ctrl-C).
 * Best effort: it resolves whether or not the server acted on it, and never throws.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
export function sendCancelRequest(client: object): Promise<boolean> {
  const { host, port, processID, secretKey } = client as BackendKey;
  if (!host || !port || typeof processID !== 'number' || typeof secretKey !== 'number') return Promise.resolve(false);
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  return new Promise((resolve) => {
    // A host starting with "/" is a Unix socket directory, as in libpq.
    const socket = host.startsWith('/') ? connect({ path: `${host}/.s.PGSQL.${port}` }) : connect({ host, port });
    const done = (sent: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(sent);
    };
    const timer = setTimeout(() => done(false), GIVE_UP_MS);
    socket.once('error', () => done(false));
    // The server reads the packet, signals the backend and closes the connection without a reply.
    socket.once('connect', () => socket.end(packet));
    socket.once('close', () => done(true));
  });
}
