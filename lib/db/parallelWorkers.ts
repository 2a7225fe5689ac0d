import type pg from 'pg';

/**
 * Caps Postgres' parallel workers per query on every new connection of `pool`
 * (`max_parallel_workers_per_gather`). The scanning reads' share bounds how many connections scan at
 * once; a parallel plan would make each of them several processes (a full-table count on the
 * benchmark's 2 cores took both with its two workers), so the share would not bound the database's
 * CPU. pg runs a client's queries in order, so the SET precedes the first statement it is given.
 */
export function capParallelWorkers(pool: pg.Pool, workers: number, onError: (err: Error) => void): void {
  // A whole number from the settings, never from a request: SET takes no bound parameters.
  const statement = `SET max_parallel_workers_per_gather = ${Math.max(0, Math.trunc(workers))}`;
  pool.on('connect', (client) => {
    client.query(statement).catch(onError);
  });
}
