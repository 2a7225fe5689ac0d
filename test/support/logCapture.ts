import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../lib/logger.ts';

/** A logger whose JSON lines are kept in memory, so tests can read them (and scan for secrets). */
export function captureLogs(level = 'info'): { logger: Logger; lines: string[]; records: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(line);
      callback();
    },
  });
  const logger = createLogger({ level, destination });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
