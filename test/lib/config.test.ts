import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../lib/ground/config.ts';
import { ConfigError } from '../../lib/ground/settingsReaders.ts';

test('defaults match the documented ones', () => {
  const config = loadConfig({});
  assert.equal(config.port, 8000);
  assert.equal(config.host, '127.0.0.1');
  assert.deepEqual(
    { size: config.pool.size, overflow: config.pool.maxOverflow, timeout: config.pool.timeoutSeconds, command: config.pool.commandTimeoutSeconds },
    { size: 5, overflow: 10, timeout: 30, command: 10 },
  );
  assert.equal(config.schema, 'public');
  assert.equal(config.table, 'nyc_train_synced');
  assert.equal(config.sampleRows, 200_000);
  assert.deepEqual(config.operations, { metricsEnabled: true, readinessTimeoutSeconds: 2, shutdownDrainSeconds: 0 });
});

test('operations settings: metrics off, readiness timeout, shutdown drain', () => {
  const config = loadConfig({ METRICS_ENABLED: 'false', READINESS_TIMEOUT: '0.5', SHUTDOWN_DRAIN_SECONDS: '10' });
  assert.deepEqual(config.operations, { metricsEnabled: false, readinessTimeoutSeconds: 0.5, shutdownDrainSeconds: 10 });
});

test('inside a Databricks App: DATABRICKS_APP_PORT on all interfaces', () => {
  const config = loadConfig({ DATABRICKS_APP_PORT: '8080', PORT: '3000' });
  assert.equal(config.port, 8080);
  assert.equal(config.host, '0.0.0.0');
});

test('inside a Databricks App without DATABRICKS_APP_PORT: 8000 on all interfaces, PORT ignored', () => {
  const config = loadConfig({ DATABRICKS_APP_NAME: 'lakebase-api', PORT: '3000' });
  assert.equal(config.port, 8000);
  assert.equal(config.host, '0.0.0.0');
});

for (const [variable, value, message] of [
  ['DB_POOL_SIZE', 'five', /DB_POOL_SIZE must be an integer/],
  ['DB_POOL_SIZE', '0', /DB_POOL_SIZE must be between 1/],
  ['DB_POOL_TIMEOUT', 'soon', /DB_POOL_TIMEOUT must be a number/],
  ['PORT', '70000', /PORT must be between/],
  ['DEFAULT_POSTGRES_TABLE', 'trips; drop table x', /DEFAULT_POSTGRES_TABLE must be a plain SQL identifier/],
  ['DEFAULT_POSTGRES_SCHEMA', 'a"b', /DEFAULT_POSTGRES_SCHEMA must be a plain SQL identifier/],
  ['LOG_LEVEL', 'loud', /LOG_LEVEL must be one of/],
  ['METRICS_ENABLED', 'maybe', /METRICS_ENABLED must be true or false/],
  ['READINESS_TIMEOUT', '0', /READINESS_TIMEOUT must be between 0.1/],
  ['SHUTDOWN_DRAIN_SECONDS', '-1', /SHUTDOWN_DRAIN_SECONDS must be between 0/],
  ['CORS_ORIGINS', '*', /CORS_ORIGINS must list explicit origins/],
  ['CORS_ORIGINS', 'https://*.example.com', /CORS_ORIGINS must list explicit origins/],
  ['CORS_ORIGINS', 'https://app.example.com/path', /CORS_ORIGINS has an invalid origin/],
  ['CORS_ORIGINS', 'ftp://app.example.com', /CORS_ORIGINS has an invalid origin/],
  ['CORS_ORIGINS', 'app.example.com', /CORS_ORIGINS has an invalid origin/],
  ['MAX_URL_LENGTH', '10', /MAX_URL_LENGTH must be between 256/],
  ['DB_MAX_ROWS', '0', /DB_MAX_ROWS must be between 1/],
  ['MAX_HEADER_BYTES', '100', /MAX_HEADER_BYTES must be between 1024/],
] as const) {
  test(`${variable}=${value} is refused with a message naming it`, () => {
    assert.throws(
      () => loadConfig({ [variable]: value }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.variable, variable);
        assert.match(err.message, message);
        return true;
      },
    );
  });
}

test('limits and CORS: defaults, and origins normalised as browsers send them', () => {
  const defaults = loadConfig({});
  assert.deepEqual([defaults.maxBodyBytes, defaults.maxHeaderBytes, defaults.maxUrlLength, defaults.corsOrigins], [16384, 16384, 4096, []]);
  const config = loadConfig({ CORS_ORIGINS: ' https://App.Example.com:443 , http://localhost:3000/ ' });
  assert.deepEqual(config.corsOrigins, ['https://app.example.com', 'http://localhost:3000']);
});
