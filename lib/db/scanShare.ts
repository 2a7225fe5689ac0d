import type pg from 'pg';
import { FairSlots } from './fairSlots.ts';
import type { ExplainCost, StatementCosts } from './statementCosts.ts';

export interface ScanShareOptions {
  /** Heavy scanning statements that may hold a connection at once (DB_SCAN_SHARE of the pool, at least 1). */
  slots: number;
  /** Light scanning statements that may hold a connection at once (see lightScanSlots); default: unbounded. */
  lightSlots?: number;
  /** Longest a statement waits for a slot before it is shed with 503 (DB_SCAN_WAIT_MS). */
  waitMs: number;
  /** Tells heavy statements from light ones (DB_SCAN_COST); absent, every scanning statement is heavy. */
  costs?: StatementCosts;
  /** Milliseconds since some fixed point (tests); default performance.now. */
  now?: () => number;
}

/** A caller seen this recently (any request reaching the database) is active. */
export const ACTIVE_CALLER_MS = 1000;

export interface ScanShareStats {
  /** The heavy statements' slots, how many are held, and how many wait. */
  slots: number;
  inUse: number;
  waiting: number;
  /** Statements shed because no slot came free within the wait (heavy and light). */
  shed: number;
  /** The light statements' slots, and how many are held. */
  lightSlots: number;
  lightInUse: number;
  /** Scanning statements so far that the planner estimated light, and heavy. */
  light: number;
  heavy: number;
}

/**
 * The shares of the pool scanning reads may hold, so point lookups and writes always find
 * connections left, and one caller's scans cannot take the database's CPU from everyone (a scan is
 * one process: see parallelWorkers.ts).
 *
 * Heavy statements (the planner's estimate at least DB_SCAN_COST: a count or aggregate of the table,
 * a deep OFFSET, a filter or sort no index serves) hold at most `slots` connections, a tenth of the
 * pool by default. Light ones (a keyset page, the sample's index probes: about a millisecond) hold
 * at most `lightSlots`, the pool less a third kept for everything else: serialising them on the
 * heavy share's one connection cost a lone caller half its throughput (bench/NEIGHBOUR.md). Both
 * wait in turn by caller, boundedly (FairSlots).
 *
 * The light share is a lone caller's. While another caller is active (seen: any request of theirs
 * reached the database within ACTIVE_CALLER_MS), a caller's scanning statements, light and heavy
 * together, hold at most as many connections as the heavy share has: on the benchmark's two cores,
 * nine light pages at once (10 ms each) left a neighbour's point lookups 12% of their lone
 * throughput, and one light and one heavy 46-55% (bench/NEIGHBOUR.md), since every running
 * statement is a process taking its turn on the CPU.
 */
export class ScanShare {
  private readonly heavySlots: FairSlots;
  private readonly lightSlots: FairSlots | null;
  private light = 0;
  private heavy = 0;
  private readonly now: () => number;
  /** The caller seen last, and the last one seen before it that was someone else (see othersActive). */
  private latest = { caller: '', at: Number.NEGATIVE_INFINITY };
  private previous = { caller: '', at: Number.NEGATIVE_INFINITY };

  constructor(private readonly options: ScanShareOptions) {
    this.now = options.now ?? (() => performance.now());
    // Contended, a caller's scans of both kinds together hold at most the heavy share's size.
    const contendedCap = (caller: string, other: FairSlots | null) =>
      this.othersActive(caller) ? Math.max(0, options.slots - (other?.heldBy(caller) ?? 0)) : Number.POSITIVE_INFINITY;
    this.heavySlots = new FairSlots(options.slots, options.waitMs, 'heavy scanning reads', (caller) => contendedCap(caller, this.lightSlots));
    this.lightSlots =
      options.lightSlots === undefined
        ? null
        : new FairSlots(options.lightSlots, options.waitMs, 'scanning reads', (caller) => contendedCap(caller, this.heavySlots));
  }

  /**
   * Runs one scanning statement, or a transaction of `statements`: in the light share when the
   * planner estimates each of them light, else in the heavy one. With nothing to plan, heavy.
   */
  async runStatement<T>(caller: string, statements: pg.QueryConfig[], explain: ExplainCost, work: () => Promise<T>): Promise<T> {
    if (await this.allLight(statements, explain)) {
      this.light++;
      const { lightSlots } = this;
      if (!lightSlots) return work();
      // Its slot freed, the caller may be below its cap for the other kind again.
      return lightSlots.run(caller, work).finally(() => this.heavySlots.grant());
    }
    this.heavy++;
    return this.heavySlots.run(caller, work).finally(() => this.lightSlots?.grant());
  }

  /** Notes that `caller` has a request reaching the database now (a point lookup, a write, a scan). */
  seen(caller: string): void {
    const at = this.now();
    if (caller !== this.latest.caller) this.previous = this.latest;
    this.latest = { caller, at };
  }

  /**
   * Whether someone other than `caller` was seen within ACTIVE_CALLER_MS. The two most recent
   * distinct callers answer it for anyone: the latest, unless it is `caller`, then the one before.
   */
  private othersActive(caller: string): boolean {
    const other = this.latest.caller !== caller ? this.latest : this.previous;
    return this.now() - other.at < ACTIVE_CALLER_MS;
  }

  private async allLight(statements: pg.QueryConfig[], explain: ExplainCost): Promise<boolean> {
    const { costs } = this.options;
    if (!costs || statements.length === 0) return false;
    for (const statement of statements) if (await costs.isHeavy(statement, explain)) return false;
    return true;
  }

  stats(): ScanShareStats {
    const heavy = this.heavySlots.stats();
    const light = this.lightSlots?.stats();
    return {
      slots: heavy.slots,
      inUse: heavy.inUse,
      waiting: heavy.waiting,
      shed: heavy.shed + (light?.shed ?? 0),
      lightSlots: light?.slots ?? Number.POSITIVE_INFINITY,
      lightInUse: light?.inUse ?? 0,
      light: this.light,
      heavy: this.heavy,
    };
  }
}
