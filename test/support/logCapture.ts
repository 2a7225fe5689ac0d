import { Writable } from 'node:stream';
import type { DestinationStream, Logger } from 'pino';
import { createLogger } from '../../lib/ops/logger.ts';

export interface CapturedLogs {
  logger: Logger;
  /** Every line, unless created with `retain: false`. */
  lines: string[];
  records: () => Array<Record<string, unknown>>;
  /** Lines written so far (retained or not). */
  count(): number;
}

/**
 * A logger whose JSON lines are kept in memory, so tests can read them (and scan for secrets).
 * A long soak passes `retain: false` and looks at each line as it is written instead: keeping
 * every line would grow the heap it is measuring.
 */
export function captureLogs(
  level = 'info',
  options: { retain?: boolean; onLine?: (line: string) => void; through?: (capture: DestinationStream) => DestinationStream } = {},
): CapturedLogs {
  const lines: string[] = [];
  const retain = options.retain ?? true;
  let count = 0;
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        count++;
        options.onLine?.(line);
        if (retain) lines.push(line);
      }
      callback();
    },
  });
  // `through`: a destination in front of the capture (telemetry's, which also exports each line).
  const logger = createLogger({ level, destination: options.through ? options.through(destination) : destination });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), count: () => count };
}
