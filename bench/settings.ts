/** The benchmark's knobs, all from the environment; BENCH_QUICK=1 shrinks everything for a smoke run. */
export interface BenchSettings {
  quick: boolean;
  rows: number;
  dataDir: string;
  /** Where RESULTS.md and results.json go; server logs go to `<outDir>/out/`. */
  outDir: string;
  /** Measured seconds per scenario, in total over its rounds. */
  durationSeconds: number;
  warmupSeconds: number;
  /** Interleaved slices per scenario (each durationSeconds / rounds long, at least 1 s). */
  rounds: number;
  connections: number[];
  /** Connections for the fixed-rate latency scenario. */
  fixedRateConnections: number;
  keepLogs: boolean;
  /** Times the fixed-rate group runs (the tail-latency target asks for three runs). */
  fixedRateRepeats: number;
  /** Run only these scenario ids (BENCH_ONLY=count,point); their baselines are not added for you. */
  only: string[] | null;
  /** Extra node options for the servers under test, e.g. `--cpu-prof` while optimising. */
  serverNodeArgs: string[];
  /** BENCH_ALT_NODE_ARGS: node options for the `*-alt` scenarios, the compiled service with them next to it without. */
  altNodeArgs: string[];
  /** BENCH_ALT_ENV (`NAME=value NAME2=value`): environment for the `*-alt` service, e.g. another CACHE_MAX_BYTES. */
  altEnv: Record<string, string>;
  /** Starts of the service per build (compiled, tsx) and database mode, for start-up time and idle RSS. */
  startupRounds: number;
  /** BENCH_REPLICAS=1: run the read replica comparison (bench/replicas.ts) instead of the main scenarios. */
  replicas: boolean;
  /** BENCH_NEIGHBOUR=1: run only the noisy-neighbour rounds (bench/noisyNeighbour.ts). */
  neighbour: boolean;
  /** BENCH_NEIGHBOUR_PARTS (`rounds,plain`, the default): the flood rounds, the protection's cost where nobody floods, or both. */
  neighbourParts: { rounds: boolean; plain: boolean };
}

type Env = Readonly<Record<string, string | undefined>>;

function positive(env: Env, name: string, fallback: number, integer = true): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be a non-negative ${integer ? 'integer' : 'number'}, got "${raw}"`);
  }
  return value;
}

export function readSettings(env: Env = process.env): BenchSettings {
  const quick = ['1', 'true', 'yes'].includes((env.BENCH_QUICK ?? '').trim().toLowerCase());
  const connections = (env.BENCH_CONNECTIONS?.trim() || (quick ? '4' : '32,128')).split(',').map((c) => Number(c.trim()));
  if (connections.some((c) => !Number.isInteger(c) || c < 1))
    throw new Error(`BENCH_CONNECTIONS must be a list of positive integers, got "${env.BENCH_CONNECTIONS}"`);
  const rows = positive(env, 'BENCH_ROWS', quick ? 5_000 : 1_000_000);
  if (rows < 2_000) throw new Error('BENCH_ROWS must be at least 2000 (the deep scenarios start 1000 rows before the end)');
  return {
    quick,
    rows,
    // A quick run must not re-seed (and so destroy) the full-size table.
    dataDir: env.BENCH_DATA_DIR?.trim() || (quick ? '.data/bench-quick' : '.data/bench'),
    outDir: env.BENCH_OUT_DIR?.trim() || 'bench',
    durationSeconds: positive(env, 'BENCH_DURATION', quick ? 1 : 5, false),
    warmupSeconds: positive(env, 'BENCH_WARMUP', quick ? 0 : 1, false),
    rounds: Math.max(1, positive(env, 'BENCH_ROUNDS', quick ? 1 : 5)),
    connections,
    fixedRateConnections: connections[0]!,
    fixedRateRepeats: Math.max(1, positive(env, 'BENCH_FIXED_RATE_REPEATS', quick ? 1 : 3)),
    keepLogs: ['1', 'true', 'yes'].includes((env.BENCH_KEEP_LOGS ?? '').trim().toLowerCase()),
    only: env.BENCH_ONLY?.trim() ? env.BENCH_ONLY.split(',').map((id) => id.trim()) : null,
    serverNodeArgs: env.BENCH_SERVER_NODE_ARGS?.trim() ? env.BENCH_SERVER_NODE_ARGS.trim().split(/\s+/) : [],
    altNodeArgs: env.BENCH_ALT_NODE_ARGS?.trim() ? env.BENCH_ALT_NODE_ARGS.trim().split(/\s+/) : [],
    altEnv: Object.fromEntries(
      (env.BENCH_ALT_ENV?.trim() ? env.BENCH_ALT_ENV.trim().split(/\s+/) : []).map((pair) => {
        const at = pair.indexOf('=');
        if (at < 1) throw new Error(`BENCH_ALT_ENV must be NAME=value pairs, got "${pair}"`);
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    ),
    startupRounds: Math.max(1, positive(env, 'BENCH_STARTUP_ROUNDS', quick ? 1 : 3)),
    replicas: ['1', 'true', 'yes'].includes((env.BENCH_REPLICAS ?? '').trim().toLowerCase()),
    neighbour: ['1', 'true', 'yes'].includes((env.BENCH_NEIGHBOUR ?? '').trim().toLowerCase()),
    neighbourParts: neighbourParts(env.BENCH_NEIGHBOUR_PARTS),
  };
}

function neighbourParts(raw: string | undefined): { rounds: boolean; plain: boolean } {
  const parts = (raw ?? 'rounds,plain').split(',').map((part) => part.trim().toLowerCase());
  return { rounds: parts.includes('rounds'), plain: parts.includes('plain') };
}
