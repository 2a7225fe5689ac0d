import type { Server } from 'node:http';

/**
 * Every benchmarked server is a child process of the orchestrator: it listens on a free loopback
 * port, reports it over IPC, and stops when told to or when the orchestrator goes away.
 */
export async function listenAndAnnounce(server: Server, onStop: () => Promise<void> = async () => undefined): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections();
    server.close(() => {
      onStop().finally(() => process.exit(0));
    });
  };
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'stop') stop();
  });
  process.send!({ type: 'ready', port });
}

/** The fixed small JSON the HTTP and framework baselines answer: the size of a /trips/count body. */
export const FIXED_BODY = JSON.stringify({ total_trips: 1_000_000 });
