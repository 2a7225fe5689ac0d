import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';
import { readLakebaseSettings } from '../../lib/lakebase/lakebaseSettings.ts';
import { resolveLakebaseTarget } from '../../lib/lakebase/resolveLakebaseTarget.ts';
import { StartupError } from '../../lib/lakebase/startupError.ts';
import { captureLogs } from '../support/logCapture.ts';
import { pollUntil } from '../support/pollUntil.ts';
import { startLakebaseService, type LakebaseService } from '../support/lakebaseService.ts';
import { STANDBY_HOST, startReplicatedDatabase, type ReplicatedDatabase } from '../support/streamingReplica.ts';
import { linesLeakingSecrets, startEmulatedLakebase, TEST_ENDPOINT, TEST_INSTANCE, type EmulatedLakebase } from '../support/workspaceEmulator.ts';

const READ_ENDPOINT = 'projects/lakebase-api/branches/main/endpoints/replica';
const READ_WRITE_ENDPOINT = 'projects/lakebase-api/branches/main/endpoints/other';
const SINGLE_NODE_INSTANCE = 'single-node';
const FAST_CHECKS = { DB_READ_CHECK_SECONDS: '0.1', CACHE_ENABLED: 'false' };

describe('read replicas on Lakebase (emulated workspace, real streaming standby)', () => {
  let replicated: ReplicatedDatabase;
  let lb: EmulatedLakebase;

  before(async () => {
    replicated = await startReplicatedDatabase({ rows: 500 });
    const host = replicated.primary.host;
    lb = await startEmulatedLakebase({
      database: { db: replicated.primary, admin: replicated.admin },
      emulator: {
        instances: [
          { name: TEST_INSTANCE, readWriteDns: host, readOnlyDns: STANDBY_HOST },
          { name: SINGLE_NODE_INSTANCE, readWriteDns: host },
        ],
        endpoints: [
          { name: TEST_ENDPOINT, host },
          { name: READ_ENDPOINT, host: STANDBY_HOST, type: 'ENDPOINT_TYPE_READ_ONLY' },
          { name: READ_WRITE_ENDPOINT, host },
        ],
      },
    });
  });

  after(async () => {
    await lb?.stop();
    await replicated?.stop();
  });

  /** Scanning reads and a write through the service: where did they run? */
  async function exercise(service: LakebaseService) {
    await pollUntil('the replica to serve reads', 15_000, () => (service.ctx.readRouting!.monitor.serving ? true : undefined));
    const mark = replicated.statements.mark();
    const before = service.ctx.readRouting!.stats().replicaReads;
    for (const url of ['/trips/count', '/trips/stream?cursor=0&page_size=10', '/trips/analytics']) assert.equal((await service.api.get(url)).status, 200, url);
    assert.equal((await service.api.post('/trips/3/vendor', { vendor_id: 'lakebase' })).status, 200);
    assert.equal(service.ctx.readRouting!.stats().replicaReads - before, 3);
    return pollUntil('the statements in the logs', 10_000, () => {
      const seen = replicated.statements.since(mark);
      return seen.standby.trip_analytics && seen.primary.trip_update_vendor ? seen : undefined;
    });
  }

  test("Provisioned, LAKEBASE_READ_REPLICAS=true: reads go to read_only_dns with the instance's credential", async () => {
    const credentialsBefore = lb.emulator.stats.byRoute['POST /api/2.0/database/credentials'] ?? 0;
    const service = await startLakebaseService(lb, { mode: 'provisioned', env: { LAKEBASE_READ_REPLICAS: 'true', ...FAST_CHECKS } });
    try {
      assert.equal(service.ctx.target.replica?.host, STANDBY_HOST);
      assert.match(service.ctx.target.replica!.description, /read_only_dns/);
      // One credential per instance: the secondaries take the primary's token.
      assert.equal((lb.emulator.stats.byRoute['POST /api/2.0/database/credentials'] ?? 0) - credentialsBefore, 1);
      assert.equal(service.ctx.target.replica!.password, service.ctx.target.password);
      const seen = await exercise(service);
      assert.equal(seen.standby.trip_count, 1);
      assert.equal(seen.primary.trip_count ?? 0, 0);
      assert.equal(seen.standby.trip_update_vendor ?? 0, 0);
      assert.deepEqual(linesLeakingSecrets(service.logs.lines, lb.emulator.secrets()), []);
    } finally {
      await service.close();
    }
  });

  test('Provisioned without readable secondaries: a clear start-up warning, every read on the primary', async () => {
    const service = await startLakebaseService(lb, {
      mode: 'provisioned',
      env: { DATABRICKS_DATABASE_INSTANCE: SINGLE_NODE_INSTANCE, LAKEBASE_READ_REPLICAS: 'true' },
    });
    try {
      assert.equal(service.ctx.readRouting, null);
      const warning = service.logs.records().find((r) => /has no readable secondaries/.test(String(r.msg)));
      assert.ok(warning, 'the start-up log says why no replica is used');
      assert.match(String(warning.msg), /single-node.*1 node.*enable_readable_secondaries/);
      assert.equal((await service.api.get('/trips/count')).status, 200);
      assert.equal((await service.api.get('/health/ready')).body.checks.replica, undefined);
    } finally {
      await service.close();
    }
  });

  test("Autoscaling, LAKEBASE_READ_ENDPOINT: the read endpoint's host and its own credential", async () => {
    const credentialsBefore = lb.emulator.stats.byRoute['POST /api/2.0/postgres/credentials'] ?? 0;
    const service = await startLakebaseService(lb, { mode: 'autoscaling', env: { LAKEBASE_READ_ENDPOINT: READ_ENDPOINT, ...FAST_CHECKS } });
    try {
      assert.equal(service.ctx.target.replica?.host, STANDBY_HOST);
      assert.match(service.ctx.target.replica!.description, /read endpoint .*replica.*status\.hosts\.read_only_host/);
      // Two credential calls: one naming the primary endpoint, one the read endpoint (its own token manager).
      assert.equal((lb.emulator.stats.byRoute['POST /api/2.0/postgres/credentials'] ?? 0) - credentialsBefore, 2);
      assert.notEqual(service.ctx.target.replica!.password, service.ctx.target.password);
      const seen = await exercise(service);
      assert.equal(seen.standby.trip_stream_json, 1);
      assert.equal(seen.primary.trip_stream_json ?? 0, 0);
      const ready = await service.api.get('/health/ready');
      assert.equal(ready.body.checks.replica.status, 'up');
      assert.deepEqual(linesLeakingSecrets(service.logs.lines, lb.emulator.secrets()), []);
    } finally {
      await service.close();
    }
  });

  test('LAKEBASE_READ_ENDPOINT naming a read-write endpoint fails start-up naming the variable', async () => {
    const env = lb.env('m2m', 'autoscaling', { LAKEBASE_READ_ENDPOINT: READ_WRITE_ENDPOINT });
    await assert.rejects(resolveLakebaseTarget(env, captureLogs().logger), (err: unknown) => {
      assert.ok(err instanceof StartupError);
      assert.equal(err.variable, 'LAKEBASE_READ_ENDPOINT');
      assert.match(err.message, /read-write endpoint without readable secondaries/);
      return true;
    });
  });

  test('read settings that cannot work are refused before any workspace call', () => {
    const base = { DATABRICKS_HOST: 'https://example.cloud.databricks.com' };
    assert.throws(
      () => readLakebaseSettings({ ...base, LAKEBASE_ENDPOINT: TEST_ENDPOINT, LAKEBASE_READ_ENDPOINT: 'projects/lakebase-api/branches/dev/endpoints/replica' }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'LAKEBASE_READ_ENDPOINT' && /primary's branch/.test(err.message),
    );
    assert.throws(
      () => readLakebaseSettings({ ...base, LAKEBASE_ENDPOINT: TEST_ENDPOINT, LAKEBASE_READ_ENDPOINT: 'replica' }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'LAKEBASE_READ_ENDPOINT',
    );
    assert.throws(
      () => readLakebaseSettings({ ...base, DATABRICKS_DATABASE_INSTANCE: TEST_INSTANCE, LAKEBASE_READ_ENDPOINT: READ_ENDPOINT }),
      (err: unknown) => err instanceof StartupError && err.variable === 'LAKEBASE_READ_ENDPOINT',
    );
    assert.throws(
      () => readLakebaseSettings({ ...base, LAKEBASE_ENDPOINT: TEST_ENDPOINT, LAKEBASE_READ_REPLICAS: 'true' }),
      (err: unknown) => err instanceof StartupError && err.variable === 'LAKEBASE_READ_REPLICAS',
    );
    assert.throws(
      () => readLakebaseSettings({ ...base, DATABRICKS_DATABASE_INSTANCE: TEST_INSTANCE, LAKEBASE_READ_REPLICAS: 'sometimes' }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'LAKEBASE_READ_REPLICAS',
    );
    assert.equal(readLakebaseSettings({ ...base, DATABRICKS_DATABASE_INSTANCE: TEST_INSTANCE })!.read, null, 'unset: no replica, as before');
  });
});
