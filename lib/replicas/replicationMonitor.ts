import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import { firstRow } from '../db/firstRow.ts';
import { ApiError } from '../errors.ts';
import { parseLsn } from './walPosition.ts';

/**
 * `starting`: not checked yet; `up`: serving reads; `lagging`: behind by more than
 * DB_READ_MAX_LAG_SECONDS; `down`: not answering, or refusing logins. Only `up` serves reads.
 */
export type ReplicaState = 'starting' | 'up' | 'lagging' | 'down';

export interface ReplicaStatus {
  state: ReplicaState;
  /** Seconds of writes the replica has not replayed yet (0 when caught up); null before the first check. */
  lagSeconds: number | null;
  /** The last WAL position the replica was seen to have replayed. */
  replayLsn: bigint | null;
  lastCheckAt: Date | null;
  /** Why it is down, in words safe to show (no host, no credential). */
  lastError: string | null;
  /** Times the state changed (up → down, lagging → up, …). */
  transitions: number;
}

export interface MonitorSettings {
  maxLagSeconds: number;
  checkIntervalSeconds: number;
  /** Longest a replica check may take before the replica counts as down. */
  checkTimeoutMs: number;
}

const PRIMARY_POSITION = { name: 'replica_monitor_primary_lsn', text: 'SELECT pg_current_wal_lsn()::text AS lsn' };
/** On a standby the position it has replayed; a read endpoint that is no standby answers its own write position. */
const REPLICA_POSITION = {
  name: 'replica_monitor_replay_lsn',
  text: 'SELECT pg_is_in_recovery() AS standby, (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn',
};
/** Primary positions kept while the replica has not replayed them (the oldest one dates the lag). */
const MAX_SAMPLES = 10_000;

class CheckTimeout extends Error {}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${ms} ms`)), ms);
  });
  work.catch(() => undefined); // a late failure after the deadline has already been counted
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function describe(err: unknown): string {
  if (err instanceof CheckTimeout) return err.message;
  if (err instanceof ApiError) {
    const code = (err.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' && code !== '' ? `${err.message} (${code})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * Watches one read replica: every DB_READ_CHECK_SECONDS it reads the primary's WAL position, then
 * the position the replica has replayed. The lag is dated on this process's clock alone (no clock
 * comparison between servers, no reliance on commit timestamps, which stop advancing on an idle
 * primary): the replica is behind by at least the age of the oldest primary position it has not
 * replayed, and by 0 once it has replayed the latest one.
 */
export class ReplicationMonitor {
  private state: ReplicaState = 'starting';
  private lagSeconds: number | null = null;
  private replayed: bigint | null = null;
  private lastCheckAt: Date | null = null;
  private lastError: string | null = null;
  private transitions = 0;
  private samples: Array<{ at: number; lsn: bigint }> = [];
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private replayProbe: Promise<bigint | null> | undefined;
  private stopped = false;
  private warnedNotStandby = false;

  constructor(
    private readonly primary: Database,
    private readonly replica: Database,
    private readonly settings: MonitorSettings,
    private readonly logger: Logger,
  ) {}

  /** The first check (never throws: a replica that is down at start-up just serves no reads), then the schedule. */
  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  get serving(): boolean {
    return this.state === 'up';
  }

  get replayLsn(): bigint | null {
    return this.replayed;
  }

  status(): ReplicaStatus {
    return {
      state: this.state,
      lagSeconds: this.lagSeconds,
      replayLsn: this.replayed,
      lastCheckAt: this.lastCheckAt,
      lastError: this.lastError,
      transitions: this.transitions,
    };
  }

  /** A read on the replica failed as only an unreachable or refusing server fails: stop sending it reads until a check succeeds. */
  markDown(err: unknown): void {
    if (this.stopped) return;
    this.setState('down', describe(err));
  }

  /** One check; concurrent callers share it. */
  check(): Promise<void> {
    this.checking ??= this.runCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  /**
   * The replica's replay position now, for a read that must see a recent write; concurrent callers
   * share one query. Null when the replica does not answer.
   */
  refreshReplay(): Promise<bigint | null> {
    this.replayProbe ??= this.readReplicaPosition()
      .then(
        (lsn) => lsn,
        () => null,
      )
      .finally(() => {
        this.replayProbe = undefined;
      });
    return this.replayProbe;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.check().finally(() => this.schedule());
    }, this.settings.checkIntervalSeconds * 1000);
    this.timer.unref();
  }

  private async readReplicaPosition(): Promise<bigint | null> {
    const row = firstRow(
      await withDeadline(this.replica.query<{ standby: boolean; lsn: string | null }>(REPLICA_POSITION), this.settings.checkTimeoutMs),
      "the replica's position query",
    );
    if (!row.standby && !this.warnedNotStandby) {
      this.warnedNotStandby = true;
      this.logger.warn('The read endpoint is not a standby (pg_is_in_recovery() is false): its own write position stands for its replay position');
    }
    if (row.lsn === null) return null;
    const lsn = parseLsn(row.lsn);
    if (this.replayed === null || lsn > this.replayed) this.replayed = lsn;
    return lsn;
  }

  private async runCheck(): Promise<void> {
    const startedAt = Date.now();
    try {
      const position = await withDeadline(this.primary.query<{ lsn: string }>(PRIMARY_POSITION), this.settings.checkTimeoutMs);
      if (this.samples.length < MAX_SAMPLES) this.samples.push({ at: startedAt, lsn: parseLsn(firstRow(position, "the primary's position query").lsn) });
    } catch {
      // The primary's trouble is the primary's to report (readiness); the replica's lag is dated
      // from the positions already sampled.
    }
    let replayed: bigint | null;
    try {
      replayed = await this.readReplicaPosition();
    } catch (err) {
      if (this.stopped) return;
      this.lastCheckAt = new Date();
      this.setState('down', describe(err));
      return;
    }
    if (this.stopped) return;
    this.lastCheckAt = new Date();
    if (replayed === null) {
      this.setState('down', 'the replica has not replayed any WAL yet');
      return;
    }
    // The oldest write position the replica has not replayed yet dates its lag.
    let oldest = this.samples[0];
    while (oldest !== undefined && oldest.lsn <= replayed) {
      this.samples.shift();
      oldest = this.samples[0];
    }
    this.lagSeconds = oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest.at) / 1000);
    if (this.lagSeconds > this.settings.maxLagSeconds) {
      this.setState('lagging', `replication lag ${this.lagSeconds.toFixed(1)} s exceeds DB_READ_MAX_LAG_SECONDS (${this.settings.maxLagSeconds} s)`);
    } else {
      this.setState('up', null);
    }
  }

  private setState(state: ReplicaState, error: string | null): void {
    this.lastError = error;
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.transitions += 1;
    if (state === 'up') {
      this.logger.info({ replica: { from: previous, lagSeconds: this.lagSeconds } }, 'Read replica serving reads');
    } else if (previous !== 'starting' || state !== 'down') {
      this.logger.warn({ replica: { from: previous, to: state, reason: error } }, `Read replica ${state}: reads go to the primary`);
    } else {
      this.logger.warn({ replica: { state, reason: error } }, 'Read replica not answering at start-up: reads go to the primary until it does');
    }
  }
}
