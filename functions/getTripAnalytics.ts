import type { Handler } from '../lib/http/handler.ts';
import { statementName } from './tripColumns.ts';

const TOP_VENDORS = 10;

interface AggregateRow {
  by_hour: number; // 1 when the row is a per-hour group
  by_vendor: number; // 1 when the row is a per-vendor group
  hour: number | null;
  vendor_id: string | null;
  trips: number;
  avg_seconds: number | null;
}

export const getTripAnalytics: Handler = async ({ signal }, ctx) => {
  // One scan computes the total, the mean duration, per-hour and per-vendor counts (GROUPING SETS),
  // instead of three full scans.
  const { rows } = await ctx.db.query<AggregateRow>(
    {
      name: statementName('trip_analytics', ctx.trips),
      text: `
      SELECT 1 - grouping(hour) AS by_hour, 1 - grouping(vendor_id) AS by_vendor, hour, vendor_id,
             count(*) AS trips, avg(trip_duration)::float8 AS avg_seconds
      FROM (SELECT extract(hour FROM pickup_datetime)::int AS hour, vendor_id, trip_duration FROM ${ctx.trips.qualified}) AS t
      GROUP BY GROUPING SETS ((), (hour), (vendor_id))`,
    },
    { signal },
  );

  let total = 0;
  let avgSeconds: number | null = null;
  let peak: { hour: number; trips: number } | null = null;
  const vendors: Array<{ vendor: string; trips: number }> = [];
  for (const row of rows) {
    if (!row.by_hour && !row.by_vendor) {
      total = row.trips;
      avgSeconds = row.avg_seconds;
    } else if (row.by_hour && row.hour !== null) {
      // Ties go to the earlier hour, so the answer is stable.
      if (!peak || row.trips > peak.trips || (row.trips === peak.trips && row.hour < peak.hour)) {
        peak = { hour: row.hour, trips: row.trips };
      }
    } else if (row.by_vendor && row.vendor_id !== null) {
      vendors.push({ vendor: row.vendor_id, trips: row.trips });
    }
  }
  vendors.sort((a, b) => b.trips - a.trips || (a.vendor < b.vendor ? -1 : 1));

  return {
    body: {
      total_trips: total,
      avg_trip_duration_minutes: avgSeconds === null ? null : Math.round((avgSeconds / 60) * 100) / 100,
      peak_hour: peak?.hour ?? null,
      peak_hour_trip_count: peak?.trips ?? 0,
      vendor_distribution: Object.fromEntries(vendors.slice(0, TOP_VENDORS).map((v) => [v.vendor, v.trips])),
    },
  };
};
