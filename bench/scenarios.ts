import type { RequestPlan } from './loadPlan.ts';

/** The processes under test. */
export type ServerKey = 'A' | 'B' | 'C' | 'service' | 'serviceTsx' | 'serviceAlt' | 'serviceNode' | 'serviceTelemetry' | 'serviceTelemetryAll' | 'serviceJwt';

export const SERVER_LABELS: Record<ServerKey, string> = {
  A: '(A) node:http, fixed JSON',
  B: '(B) Express 5, fixed JSON',
  C: '(C) Express 5 + pg.Pool point select',
  service: "service, compiled (app.yaml's command)",
  serviceTsx: 'service through tsx (node --import tsx server.ts, as npm start runs it)',
  serviceAlt: "service, compiled (app.yaml's command) with BENCH_ALT_NODE_ARGS / BENCH_ALT_ENV",
  serviceNode: 'service (node:http adapter)',
  serviceTelemetry: "service, compiled (app.yaml's command), OpenTelemetry export on (OTLP/gRPC to a local sink)",
  serviceTelemetryAll: 'the same, every request traced (OTEL_TRACES_SAMPLER=parentbased_always_on)',
  serviceJwt: 'service (Express adapter), AUTH_MODE=jwt',
};

/** The servers that are the service itself, whatever runs it. */
export const SERVICE_KEYS: readonly string[] = ['service', 'serviceTsx', 'serviceAlt', 'serviceNode', 'serviceTelemetry', 'serviceTelemetryAll', 'serviceJwt'];

export interface Scenario {
  id: string;
  label: string;
  server: ServerKey;
  plan: RequestPlan;
  /** One request made (and waited for) before the warm-up: fills the cache, checks the route answers 2xx. */
  probe: { path: string; headers?: Record<string, string> };
  /** The scenario (same connection count, same run) this one is compared with. */
  baseline?: string;
  /** Fixed-rate scenarios only: how the rate is kept (see LoadSpec.pacing). */
  pacing?: 'autocannon' | 'constant';
  /** Rows each request answers (the export): the report gives rows/s. */
  rowsPerRequest?: number;
}

/** Forces a fresh query: a fixed URL would otherwise be answered from the results cache. */
const NO_CACHE = { 'cache-control': 'no-cache' };

/** Scenarios measured together: with `interleave`, in alternating one-second slices. */
export interface ScenarioGroup {
  name: string;
  interleave: boolean;
  scenarios: Scenario[];
}

/**
 * Cached counts and point lookups from an exporting service against the same service with export
 * off, turn by turn. Ids: count-otel-off, count-otel, point-otel-off, point-otel, with `suffix`
 * after the exporting ones and after `-off`.
 */
function telemetryGroup(name: string, server: ServerKey, suffix: string, on: string, rows: number): ScenarioGroup {
  const point: RequestPlan = { kind: 'randomTrip', maxId: rows };
  const probeTrip = { path: '/trips/1' };
  const count = { plan: { kind: 'fixed', path: '/trips/count' } as RequestPlan, probe: { path: '/trips/count' } };
  return {
    name,
    interleave: true,
    scenarios: [
      { id: `count-otel-off${suffix}`, label: 'GET /trips/count (cached), telemetry off', server: 'service', ...count },
      { id: `count-otel${suffix}`, label: `GET /trips/count (cached), ${on}`, server, ...count, baseline: `count-otel-off${suffix}` },
      { id: `point-otel-off${suffix}`, label: 'GET /trips/{id} (random ids), telemetry off', server: 'service', plan: point, probe: probeTrip },
      { id: `point-otel${suffix}`, label: `GET /trips/{id} (random ids), ${on}`, server, plan: point, probe: probeTrip, baseline: `point-otel-off${suffix}` },
    ],
  };
}

/**
 * The groups run at each connection count, in this order. Within an interleaved group the
 * scenarios take turns in short slices (C, point, point-node, C, point, …), so a comparison and its
 * baseline see the same moments of a shared, noisy machine rather than neighbouring ones.
 */
export function scenarioGroups(rows: number, bearerToken = 'issued-at-run-time'): ScenarioGroup[] {
  const deepCursor = rows - 1000; // 999,000 for the default million rows
  const deepPage = Math.floor(deepCursor / 100) + 1; // the page starting at offset 999,000
  const fixed = (path: string, headers?: Record<string, string>): RequestPlan => ({ kind: 'fixed', path, headers });
  const point: RequestPlan = { kind: 'randomTrip', maxId: rows };
  const probeTrip = { path: '/trips/1' };
  const authorized = { authorization: `Bearer ${bearerToken}` };
  // Stream pages from a fresh random cursor every request (and no-cache, so a repeated cursor misses
  // too): the first tenth of the table against the last tenth, each page a real query.
  const shallowTo = Math.floor(rows / 10);
  const deepFrom = Math.max(0, deepCursor - Math.floor(rows / 10));
  const randomStream = (cursorFrom: number, cursorTo: number): RequestPlan => ({
    kind: 'randomStream',
    cursorFrom,
    cursorTo,
    pageSize: 100,
    headers: NO_CACHE,
  });
  return [
    {
      name: 'http',
      interleave: true,
      scenarios: [
        { id: 'A', label: 'A: fixed JSON', server: 'A', plan: fixed('/'), probe: { path: '/' } },
        { id: 'B', label: 'B: fixed JSON', server: 'B', plan: fixed('/'), probe: { path: '/' }, baseline: 'A' },
        { id: 'count', label: 'GET /trips/count (cached)', server: 'service', plan: fixed('/trips/count'), probe: { path: '/trips/count' }, baseline: 'B' },
        {
          id: 'count-tsx',
          label: 'GET /trips/count (cached), through tsx',
          server: 'serviceTsx',
          plan: fixed('/trips/count'),
          probe: { path: '/trips/count' },
          baseline: 'count',
        },
        // The same cached read with every request's JWT checked (the verified-token cache keeps it cheap),
        // against AUTH_MODE=none sent the very same request: what verification costs, apart from the
        // ~600 header bytes every bearer request carries, which count-bearer measures against count.
        // The same with other node options or settings (BENCH_ALT_NODE_ARGS / BENCH_ALT_ENV, only run when set): what an option costs, same slices.
        {
          id: 'count-alt',
          label: 'GET /trips/count (cached), alternative options',
          server: 'serviceAlt',
          plan: fixed('/trips/count'),
          probe: { path: '/trips/count' },
          baseline: 'count',
        },
        {
          id: 'count-bearer',
          label: 'GET /trips/count (cached), AUTH_MODE=none, with the JWT header',
          server: 'service',
          plan: fixed('/trips/count', authorized),
          probe: { path: '/trips/count', headers: authorized },
          baseline: 'count',
        },
        {
          id: 'count-jwt',
          label: 'GET /trips/count (cached), AUTH_MODE=jwt',
          server: 'serviceJwt',
          plan: fixed('/trips/count', authorized),
          probe: { path: '/trips/count', headers: authorized },
          baseline: 'count-bearer',
        },
        {
          id: 'count-node',
          label: 'GET /trips/count (cached), node:http adapter',
          server: 'serviceNode',
          plan: fixed('/trips/count'),
          probe: { path: '/trips/count' },
          baseline: 'A',
        },
        {
          id: 'analytics',
          label: 'GET /trips/analytics (cached)',
          server: 'service',
          plan: fixed('/trips/analytics'),
          probe: { path: '/trips/analytics' },
          baseline: 'B',
        },
      ],
    },
    {
      name: 'database',
      interleave: true,
      scenarios: [
        { id: 'C', label: 'C: point select', server: 'C', plan: point, probe: probeTrip },
        { id: 'point', label: 'GET /trips/{id} (random ids)', server: 'service', plan: point, probe: probeTrip, baseline: 'C' },
        { id: 'point-tsx', label: 'GET /trips/{id} (random ids), through tsx', server: 'serviceTsx', plan: point, probe: probeTrip, baseline: 'point' },
        {
          id: 'point-alt',
          label: 'GET /trips/{id} (random ids), alternative options',
          server: 'serviceAlt',
          plan: point,
          probe: probeTrip,
          baseline: 'point',
        },
        { id: 'point-node', label: 'GET /trips/{id} (random ids), node:http adapter', server: 'serviceNode', plan: point, probe: probeTrip, baseline: 'C' },
        { id: 'sample', label: 'GET /trips/sample', server: 'service', plan: fixed('/trips/sample'), probe: { path: '/trips/sample' }, baseline: 'C' },
        {
          id: 'mixed',
          label: 'mixed: 80% GET /trips/{id}, 10% stream page, 10% POST vendor',
          server: 'service',
          plan: { kind: 'mixed', maxId: rows, shares: { pointRead: 0.8, streamRead: 0.1, write: 0.1 } },
          probe: probeTrip,
          baseline: 'C',
        },
      ],
    },
    {
      name: 'stream',
      interleave: true,
      scenarios: [
        {
          id: 'stream-0',
          label: `GET /trips/stream, random cursors 0–${shallowTo.toLocaleString('en-US')} (uncached)`,
          server: 'service',
          plan: randomStream(0, shallowTo),
          probe: { path: '/trips/stream?cursor=0&page_size=100' },
          baseline: 'C',
        },
        {
          id: 'stream-deep',
          label: `GET /trips/stream, random cursors ${deepFrom.toLocaleString('en-US')}–${deepCursor.toLocaleString('en-US')} (uncached)`,
          server: 'service',
          plan: randomStream(deepFrom, deepCursor),
          probe: { path: `/trips/stream?cursor=${deepCursor}&page_size=100` },
          baseline: 'stream-0',
        },
        {
          id: 'stream-alt',
          label: `GET /trips/stream, random cursors 0–${shallowTo.toLocaleString('en-US')} (uncached), alternative options`,
          server: 'serviceAlt',
          plan: randomStream(0, shallowTo),
          probe: { path: '/trips/stream?cursor=0&page_size=100' },
          baseline: 'stream-0',
        },
      ],
    },
    {
      // The operations `npm run add-table` generated for the same table (/rides), against the
      // hand-written ones, in the same slices; keys drawn at random so the cache does not answer.
      name: 'generated',
      interleave: true,
      scenarios: [
        { id: 'trip-get', label: 'GET /trips/{id} (random ids)', server: 'service', plan: point, probe: probeTrip },
        {
          id: 'ride-get',
          label: 'GET /rides/{id} (generated, random ids)',
          server: 'service',
          plan: { kind: 'randomKey', path: '/rides/{id}', maxId: rows },
          probe: { path: '/rides/1' },
          baseline: 'trip-get',
        },
        {
          id: 'trip-stream',
          label: 'GET /trips/stream (random cursors, uncached)',
          server: 'service',
          plan: { kind: 'randomKey', path: '/trips/stream?cursor={id}&page_size=100', maxId: rows - 100, headers: NO_CACHE },
          probe: { path: '/trips/stream?cursor=0&page_size=100' },
        },
        {
          // PostgREST's dialect: the same page as the stream's, as a filter on the key (what its Link rel="next" asks for).
          id: 'ride-list',
          label: 'GET /rides?id=gt.N&limit=100 (generated, PostgREST dialect, random keys, uncached)',
          server: 'service',
          plan: { kind: 'randomKey', path: '/rides?id=gt.{id}&limit=100', maxId: rows - 100, headers: NO_CACHE },
          probe: { path: '/rides?limit=100' },
          baseline: 'trip-stream',
        },
        {
          // postgrest-js' .eq('id', N).single(): one object by a filter, against the generated lookup by key.
          id: 'ride-single',
          label: 'GET /rides?id=eq.N, Accept: vnd.pgrst.object (single(), random ids)',
          server: 'service',
          plan: { kind: 'randomKey', path: '/rides?id=eq.{id}', maxId: rows, headers: { accept: 'application/vnd.pgrst.object+json' } },
          probe: { path: '/rides?id=eq.1', headers: { accept: 'application/vnd.pgrst.object+json' } },
          baseline: 'ride-get',
        },
      ],
    },
    // The same service with OpenTelemetry export on (spans, log lines and metrics sent over OTLP/gRPC
    // to a loopback sink) against itself with it off, turn by turn, as the platform starts it (the
    // default sampler, at most TRACES_PER_SECOND new traces a second).
    telemetryGroup('telemetry', 'serviceTelemetry', '', 'telemetry on', rows),
    // The same with every request traced, in a group of its own: that server's exports drain for a
    // second after each of its slices and would otherwise weigh on its neighbours' slices.
    telemetryGroup('telemetry, every request traced', 'serviceTelemetryAll', '-all', 'telemetry on, every request traced', rows),
    {
      // A deep offset page takes most of a second: slices would complete next to nothing.
      name: 'pages',
      interleave: false,
      scenarios: [
        {
          id: 'pages-early',
          label: 'GET /trips/pages page 1 (uncached, no count)',
          server: 'service',
          plan: fixed('/trips/pages?page=1&page_size=100&include_count=false', NO_CACHE),
          probe: { path: '/trips/pages?page=1&page_size=100&include_count=false' },
          baseline: 'C',
        },
        {
          id: 'pages-deep',
          label: `GET /trips/pages page ${deepPage.toLocaleString('en-US')} (offset ${deepCursor.toLocaleString('en-US')}, uncached, no count)`,
          server: 'service',
          plan: fixed(`/trips/pages?page=${deepPage}&page_size=100&include_count=false`, NO_CACHE),
          probe: { path: `/trips/pages?page=${deepPage}&page_size=100&include_count=false` },
          baseline: 'pages-early',
        },
      ],
    },
  ];
}

/**
 * The fixed-rate latency scenarios: (C) and the service's point lookup, both offered half of (C)'s
 * measured throughput, once with autocannon's rate option and once paced evenly (open loop).
 */
export function fixedRateGroup(rows: number): ScenarioGroup {
  const point: RequestPlan = { kind: 'randomTrip', maxId: rows };
  const probe = { path: '/trips/1' };
  return {
    name: 'fixed rate',
    interleave: true,
    scenarios: [
      { id: 'C-rate', label: 'C: point select, fixed rate (autocannon rate option)', server: 'C', plan: point, probe, pacing: 'autocannon' },
      {
        id: 'point-rate',
        label: 'GET /trips/{id}, fixed rate (autocannon rate option)',
        server: 'service',
        plan: point,
        probe,
        baseline: 'C-rate',
        pacing: 'autocannon',
      },
      { id: 'C-paced', label: 'C: point select, fixed rate (evenly paced)', server: 'C', plan: point, probe, pacing: 'constant' },
      {
        id: 'point-paced',
        label: 'GET /trips/{id}, fixed rate (evenly paced)',
        server: 'service',
        plan: point,
        probe,
        baseline: 'C-paced',
        pacing: 'constant',
      },
    ],
  };
}

/**
 * Latency with no concurrency: one connection, one request at a time, so batching can only add
 * (it must not: a lone lookup goes out at once).
 */
export function singleConnectionGroup(rows: number): ScenarioGroup {
  const point: RequestPlan = { kind: 'randomTrip', maxId: rows };
  const probe = { path: '/trips/1' };
  return {
    name: 'one connection',
    interleave: true,
    scenarios: [
      { id: 'C-single', label: 'C: point select, one connection', server: 'C', plan: point, probe },
      { id: 'point-single', label: 'GET /trips/{id}, one connection', server: 'service', plan: point, probe, baseline: 'C-single' },
    ],
  };
}

/** Rows one CSV export carries: 100,000, or the whole table when it is smaller (BENCH_QUICK). */
export const exportRows = (rows: number): number => Math.min(100_000, rows);

/**
 * A large CSV export of the generated table, one at a time: streamed from a server-side cursor
 * (lib/postgrest/streamRead.ts), so the service's peak RSS during it should stay near its idle size
 * whatever the export's size. Reported as rows/s; never cached (a streamed answer is not).
 */
export function exportGroup(rows: number): ScenarioGroup {
  const n = exportRows(rows);
  const path = `/rides?limit=${n}`;
  const headers = { accept: 'text/csv' };
  return {
    name: 'CSV export',
    interleave: false,
    scenarios: [
      {
        id: 'ride-export',
        label: `GET /rides?limit=${n}, Accept: text/csv (streamed export, one connection)`,
        server: 'service',
        plan: { kind: 'fixed', path, headers },
        probe: { path, headers },
        rowsPerRequest: n,
      },
    ],
  };
}

/** Every scenario id, in report order for one connection count, fixed rate last. */
export function allScenarioIds(rows: number, withAlt = false): string[] {
  return [...scenarioGroups(rows), fixedRateGroup(rows), singleConnectionGroup(rows), exportGroup(rows)]
    .flatMap((g) => g.scenarios)
    .filter((s) => withAlt || s.server !== 'serviceAlt')
    .map((s) => s.id);
}
