import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../lib/ground/config.ts';
import type { PasswordSource } from '../../lib/db/connectionTarget.ts';
import { createPool } from '../../lib/db/createPool.ts';
import { Database } from '../../lib/db/database.ts';
import { resolveLakebaseTarget } from '../../lib/lakebase/resolveLakebaseTarget.ts';
import type { LakebaseTokenState } from '../../lib/lakebase/tokenManager.ts';
import { captureLogs } from '../support/logCapture.ts';
import { startEmulatedLakebase, TEST_SERVICE_PRINCIPAL, waitFor, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

/**
 * The races behind "revoked token, workspace healthy" failing two runs in three
 * (test/reliability/tokenFaults.test.ts), each a 503 where a revocation should cost the caller
 * nothing. Here each interleaving is forced, step by step, against the emulated workspace (real
 * SDK, real expiring Postgres passwords; like Lakebase it refuses a revoked token, and more
 * strictly, a superseded one) and the product's own pool:
 * 1. A login that waited for a pool slot took a token minted after the attempt began; that very
 *    token was then revoked. The retry asked for a refresh "unless a newer token arrived since the
 *    attempt started", saw the rotation, skipped the refresh and retried with the refused token.
 * 2. A login took its token just before a rotation (refused as stale: fine, retry with the newer
 *    one), and the newer token was revoked before the retry logged in. The retry was the last
 *    attempt, though the refusal was now of the current token, which a refresh cures.
 */
let lb: EmulatedLakebase;
const logs = captureLogs();

before(async () => {
  lb = await startEmulatedLakebase({ rows: 10, tokenLifetimeSeconds: 60 });
});
after(async () => {
  await lb?.stop();
});

for (const path of ['pool.query', 'pool.connect'] as const) {
  test(`a login that waited for a slot, took a token minted meanwhile, and was refused: one refresh, then success (${path})`, async () => {
    const env = lb.env('m2m', 'provisioned', { TOKEN_REFRESH_INTERVAL_SECONDS: '600', TOKEN_REFRESH_MARGIN_SECONDS: '1' });
    const target = (await resolveLakebaseTarget(env, logs.logger))!;
    const source = target.password as PasswordSource;
    const state = () => source.state() as LakebaseTokenState;
    const pool = createPool(target, loadConfig({ DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '0', DB_POOL_TIMEOUT: '10' }));
    const database = new Database(pool, source);
    try {
      // The only slot is busy: the next attempt starts now but logs in only once the slot frees.
      const busy = await pool.connect();
      const queued =
        path === 'pool.query'
          ? database.query<{ one: number }>({ text: 'SELECT 1 AS one' }).then((r) => r.rows[0]?.one)
          : database.transaction(async (client) => (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one);
      await waitFor('the attempt to queue for the slot', () => pool.waitingCount === 1);

      // Meanwhile a rotation brings a newer token, and then that token is revoked.
      const rotatedFrom = state().refreshCount;
      await new Promise((resolve) => setTimeout(resolve, 5)); // the rotation must be strictly newer than the attempt's start
      await source.refresh('rotation', { refusedPasswordTakenAt: Date.now() });
      assert.equal(state().refreshCount, rotatedFrom + 1);
      const mintedBeforeRevoke = lb.emulator.credentialsFor(TEST_SERVICE_PRINCIPAL.clientId);
      await lb.emulator.revoke(TEST_SERVICE_PRINCIPAL.clientId);

      // The slot frees: the queued attempt logs in with the rotated (now revoked) token and is refused.
      busy.release(true);
      assert.equal(await queued, 1, 'the caller never sees the refused login');
      assert.equal(lb.emulator.credentialsFor(TEST_SERVICE_PRINCIPAL.clientId) - mintedBeforeRevoke, 1, 'exactly one forced refresh');
      assert.equal(state().refreshCount, rotatedFrom + 2);
    } finally {
      await pool.end();
      await target.close();
    }
  });
}

/** A TCP proxy in front of Postgres that holds new connections until opened: it pins a login between taking its password and being checked. */
class LoginGate {
  private held: Array<() => void> = [];
  private open = true;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static async start(upstreamPort: number): Promise<LoginGate> {
    const server = createServer();
    const gate = new LoginGate(server);
    server.on('connection', (client) => {
      client.pause();
      gate.sockets.add(client);
      const pass = () => {
        const upstream = connect(upstreamPort, '127.0.0.1');
        gate.sockets.add(upstream);
        client.pipe(upstream).pipe(client);
        client.resume();
        const end = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', end).on('close', end);
        upstream.on('error', end).on('close', end);
      };
      if (gate.open) pass();
      else gate.held.push(pass);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return gate;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }
  get waiting(): number {
    return this.held.length;
  }
  close(): void {
    this.open = false;
  }
  release(): void {
    this.open = true;
    for (const pass of this.held.splice(0)) pass();
  }
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

test('a login refused as stale after a rotation, whose newer token is revoked before the retry: a real refresh, then success', async () => {
  const env = lb.env('m2m', 'provisioned', { TOKEN_REFRESH_INTERVAL_SECONDS: '600', TOKEN_REFRESH_MARGIN_SECONDS: '1' });
  const target = (await resolveLakebaseTarget(env, logs.logger))!;
  const source = target.password as PasswordSource;
  const state = () => source.state() as LakebaseTokenState;
  const gate = await LoginGate.start(target.port);
  const pool = createPool({ ...target, host: '127.0.0.1', port: gate.port }, loadConfig({ DB_POOL_SIZE: '1', DB_MAX_OVERFLOW: '0', DB_POOL_TIMEOUT: '10' }));
  const database = new Database(pool, source);
  try {
    // The login takes the current token, then is held before the server checks it.
    gate.close();
    const queued = database.query<{ one: number }>({ text: 'SELECT 1 AS one' }).then((r) => r.rows[0]?.one);
    await waitFor('the login to be held at the gate', () => gate.waiting === 1);

    // A rotation supersedes that token, and the newer token is revoked at once.
    const rotatedFrom = state().refreshCount;
    await new Promise((resolve) => setTimeout(resolve, 5)); // the rotation must be strictly newer than the login's token
    await source.refresh('rotation', { refusedPasswordTakenAt: Date.now() });
    const mintedBeforeRevoke = lb.emulator.credentialsFor(TEST_SERVICE_PRINCIPAL.clientId);
    await lb.emulator.revoke(TEST_SERVICE_PRINCIPAL.clientId);

    // Refused as stale (no refresh: a newer token exists), then refused as revoked (a real refresh), then served.
    gate.release();
    assert.equal(await queued, 1, 'the caller never sees the refused logins');
    assert.equal(lb.emulator.credentialsFor(TEST_SERVICE_PRINCIPAL.clientId) - mintedBeforeRevoke, 1, 'exactly one forced refresh');
    assert.equal(state().refreshCount, rotatedFrom + 2);
  } finally {
    await pool.end();
    await gate.stop();
    await target.close();
  }
});
