/**
 * Baseline (C): a minimal Express 5 app running the service's prepared point select through a
 * pg.Pool of the same size (same DB_POOL_SIZE / DB_MAX_OVERFLOW, same type parsers). The least
 * any real app over this table does: no validation, no logging, no cache.
 */
import { createServer } from 'node:http';
import express from 'express';
import { loadConfig } from '../../lib/ground/config.ts';
import { createPool, warmPool } from '../../lib/db/createPool.ts';
import { quoteIdent } from '../../lib/db/sqlIdentifiers.ts';
import { TRIP_COLUMNS } from '../../functions/tripColumns.ts';
import { listenAndAnnounce } from './announce.ts';

const env = process.env;
const config = loadConfig(env);
const pool = createPool(
  {
    mode: 'postgres',
    host: env.PGHOST!,
    port: Number(env.PGPORT),
    database: env.PGDATABASE!,
    user: env.PGUSER!,
    password: env.PGPASSWORD!,
    ssl: false,
    description: 'bench database',
    close: async () => undefined,
  },
  config,
  'bench-baseline-c',
);
await warmPool(pool, config.pool.size);
const statement = {
  name: 'baseline_trip_by_id',
  text: `SELECT ${TRIP_COLUMNS} FROM ${quoteIdent(config.schema)}.${quoteIdent(config.table)} WHERE id = $1`,
};

const app = express();
app.get('/trips/:id', async (req, res) => {
  const id = Number(req.params.id);
  if (!Number.isSafeInteger(id) || id < 1) {
    res.status(400).json({ detail: 'bad id' });
    return;
  }
  try {
    const { rows } = await pool.query({ ...statement, values: [id] });
    if (rows[0]) res.json(rows[0]);
    else res.status(404).json({ detail: 'not found' });
  } catch {
    res.status(503).json({ detail: 'database unavailable' });
  }
});
await listenAndAnnounce(createServer(app), () => pool.end());
