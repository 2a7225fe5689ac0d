/**
 * A strict reader of the Prometheus text exposition format (0.0.4), so tests assert on parsed
 * samples rather than grepping for a number, and fail on any line a Prometheus server would reject.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+-?\\d+)?$`);
const LABEL = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case; prom-client writes `Nan`. */
function parseValue(raw: string, line: string): number {
  if (/^nan$/i.test(raw)) return Number.NaN;
  if (/^\+?inf$/i.test(raw)) return Number.POSITIVE_INFINITY;
  if (/^-inf$/i.test(raw)) return Number.NEGATIVE_INFINITY;
  const value = Number(raw);
  if (raw === '' || !Number.isFinite(value)) throw new Error(`bad sample value in: ${line}`);
  return value;
}

function parseLabels(raw: string | undefined, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = raw ?? '';
  while (rest.trim() !== '') {
    const match = LABEL.exec(rest);
    if (!match) throw new Error(`bad labels in: ${line}`);
    if (match[1]! in labels) throw new Error(`repeated label ${match[1]} in: ${line}`);
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(match[0].length);
  }
  return labels;
}

/** The family a sample belongs to: histogram and summary samples carry a suffix. */
function familyOf(sampleName: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  const exact = families.get(sampleName);
  if (exact) return exact;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sampleName.endsWith(suffix)) continue;
    const family = families.get(sampleName.slice(0, -suffix.length));
    if (family && (family.type === 'histogram' || family.type === 'summary')) return family;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const family = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] };
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`unknown metric type in: ${line}`);
        family.type = rest;
      } else family.help = rest;
      families.set(name, family);
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const family = familyOf(match[1]!, families);
    if (!family) throw new Error(`sample of an undeclared metric: ${line}`);
    family.samples.push({ name: match[1]!, labels: parseLabels(match[2], line), value: parseValue(match[3]!, line) });
  }
  return families;
}

/** The samples named `sampleName` whose labels include every one given. */
export function samples(families: Map<string, MetricFamily>, sampleName: string, labels: Record<string, string> = {}): Sample[] {
  const family = familyOf(sampleName, families);
  if (!family) return [];
  return family.samples.filter((s) => s.name === sampleName && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of exactly one matching sample; 0 when there is none (a series not created yet). */
export function sampleValue(families: Map<string, MetricFamily>, sampleName: string, labels: Record<string, string> = {}): number {
  const found = samples(families, sampleName, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${sampleName} match ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}
