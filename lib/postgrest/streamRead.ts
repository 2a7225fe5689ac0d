import type pg from 'pg';
import { sendCancelRequest } from '../db/cancelRequest.ts';
import type { Database } from '../db/database.ts';
import { explainStatement, planEstimate } from '../db/statementCosts.ts';
import { ClientClosedRequest } from '../errors.ts';
import { StreamedBody } from '../ground/neutralRequest.ts';
import { bindPlannedCount, compileStream, type ReadRow } from './compileRead.ts';
import { postgrestRefusal } from './databaseRefusal.ts';
import { csvLine, csvLines, nextPageLink, readHead } from './dialectResponse.ts';
import type { ParsedRequest } from './parseQuery.ts';
import { selectNames } from './sqlFragments.ts';
import type { PostgrestTable } from './tableShape.ts';

/** Rows per FETCH: one chunk of the body (a few hundred kB of JSON at most for a wide table). */
const FETCH_ROWS = 1000;

/** A read answered while its rows are read: headers now, the body as the cursor walks. */
export interface StreamedDialectResponse {
  status: number;
  headers: Record<string, string>;
  body: StreamedBody;
}

/** The page's rows as body text, batch by batch: a JSON array, or CSV headed by `names`. */
class BodyWriter {
  private first = true;
  constructor(
    private readonly query: ParsedRequest,
    private readonly names: readonly string[],
  ) {}

  opening(): string {
    return this.query.shape === 'csv' ? csvLine(this.names) : '[';
  }

  batch(items: readonly string[]): string {
    if (this.query.shape === 'csv')
      return csvLines(
        items.map((item) => JSON.parse(item) as Record<string, unknown>),
        this.names,
      );
    const text = (this.first ? '' : ',') + items.join(',');
    this.first = false;
    return text;
  }

  closing(): string {
    return this.query.shape === 'csv' ? '' : ']';
  }
}

/**
 * While the caller is connected nothing happens; when it goes away, the statement running on the
 * cursor's connection is cancelled on the server (the wire protocol's CancelRequest), and the
 * cancel is awaited so that it cannot land on a later statement.
 */
function cancelOnAbort(client: pg.PoolClient, signal: AbortSignal | undefined): { settled(): Promise<void>; dispose(): void } {
  let sent: Promise<boolean> | undefined;
  const cancel = () => {
    sent ??= sendCancelRequest(client);
  };
  signal?.addEventListener('abort', cancel, { once: true });
  return {
    async settled() {
      await sent;
    },
    dispose: () => signal?.removeEventListener('abort', cancel),
  };
}

/**
 * GET of the collection as a stream, at constant memory whatever its size: in one read-only,
 * repeatable-read transaction on one connection, a first statement counts the page (so status,
 * Content-Range and the next-page Link are exact before any row is sent), then a server-side
 * cursor (DECLARE … NO SCROLL CURSOR, FETCH FETCH_ROWS) yields the rows as they come. The first
 * batch is fetched before answering, so a statement Postgres refuses is still a PostgREST error
 * response. The connection stays out of the pool until the body is read to the end or cancelled
 * (StreamedBody.cancel); a caller that goes away cancels the running FETCH. The head reads what
 * the rows do (and the total), so its estimate is the stream's: a heavy stream holds its share of
 * the pool (Database.forScan) until its body ends, as it holds its connection.
 */
export function streamTable(
  db: Pick<Database, 'transaction'>,
  table: PostgrestTable,
  query: ParsedRequest,
  search: string,
  signal?: AbortSignal,
): Promise<StreamedDialectResponse> {
  if (signal?.aborted) return Promise.reject(new ClientClosedRequest());
  const compiled = compileStream(table, query);
  const writer = new BodyWriter(query, selectNames(table, query.select));
  return new Promise((resolve, reject) => {
    let answered = false;
    db.transaction(
      async (client) => {
        const abort = cancelOnAbort(client, signal);
        try {
          await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
          const { planned } = compiled;
          const headStatement = planned
            ? bindPlannedCount(compiled.head, planned, planEstimate((await client.query(explainStatement(planned.statement))).rows).rows)
            : compiled.head;
          const head = (await client.query<ReadRow>(headStatement)).rows[0] as ReadRow;
          const { status, headers } = readHead(query, compiled.offset, head);
          const next = query.rangeRequested ? undefined : nextPageLink(`/${table.name}`, search, compiled, head);
          if (next) headers.link = next;
          await client.query({ text: `DECLARE pgrst_stream NO SCROLL CURSOR FOR ${compiled.rows.text}`, values: compiled.rows.values });
          const fetchBatch = async (): Promise<string[]> =>
            (await client.query<{ item: string }>(`FETCH ${FETCH_ROWS} FROM pgrst_stream`)).rows.map((row) => row.item);
          const first = await fetchBatch();

          // The transaction lasts as long as the body: it ends when the generator does.
          let ended!: (err?: unknown) => void;
          const done = new Promise<void>((resolveDone, rejectDone) => {
            ended = (err) => (err === undefined ? resolveDone() : rejectDone(err));
          });
          async function* chunks(): AsyncGenerator<string, void, undefined> {
            let failure: unknown;
            try {
              yield writer.opening();
              let batch = first;
              for (;;) {
                if (batch.length > 0) yield writer.batch(batch);
                if (batch.length < FETCH_ROWS || signal?.aborted) break;
                batch = await fetchBatch();
              }
              yield writer.closing();
            } catch (err) {
              failure = err;
              throw err;
            } finally {
              ended(failure ?? (signal?.aborted ? new ClientClosedRequest() : undefined));
            }
          }
          answered = true;
          resolve({ status, headers, body: new StreamedBody(chunks(), () => ended()) });
          await done;
        } catch (err) {
          await abort.settled();
          throw err;
        } finally {
          abort.dispose();
        }
      },
      [compiled.head],
    ).catch((err: unknown) => {
      // Once answered, a failure can only cut the body short (the generator threw it to the sender).
      if (!answered) reject(signal?.aborted ? new ClientClosedRequest() : postgrestRefusal(err));
    });
  });
}
