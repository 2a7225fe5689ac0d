import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import { requestLogFields } from '../ground/requestScope.ts';
import { tracing } from '../telemetry/tracing.ts';

/**
 * Structured JSON logs on stdout. Secrets are redacted by key as a second line of defence: the code
 * never logs a token, password or connection string in the first place.
 */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'client_secret',
  '*.client_secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers["x-forwarded-access-token"]',
  'connectionString',
  '*.connectionString',
];

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

export function createLogger(options: { level: string; pretty?: boolean; destination?: pino.DestinationStream }): Logger {
  const base: pino.LoggerOptions = {
    level: options.level,
    base: { service: 'lakebase-api' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Every line logged while serving a request carries its id (fields given explicitly win), and
    // with telemetry on the trace and span it belongs to.
    mixin: () => {
      const spans = tracing();
      // requestLogFields returns a new object each time: adding the ids to it spares a copy.
      return spans.enabled ? Object.assign(requestLogFields(), spans.logFields()) : requestLogFields();
    },
  };
  if (options.destination) return pino(base, options.destination);
  // Human-readable lines for a developer at a terminal; JSON everywhere else (apps, CI, files).
  const pretty = options.pretty ?? (process.stdout.isTTY && process.env.NODE_ENV !== 'production');
  if (pretty && prettyAvailable()) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } });
  }
  return pino(base, batchedStdout());
}

/** Longest a line waits in the buffer before it is written. */
const LOG_FLUSH_MS = 100;

/**
 * stdout, written in batches: lines gather until 4 KiB are waiting or LOG_FLUSH_MS has passed.
 * One write per line was the largest system call a lone request made after its statement and its
 * response (about a tenth of its CPU): at one request at a time nothing else gathers them. pino
 * writes what is left when the process exits (also on a crash); only a SIGKILL loses the last
 * LOG_FLUSH_MS of lines.
 */
export function batchedStdout(): pino.DestinationStream {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  let waiting = false;
  const write = destination.write.bind(destination);
  destination.write = (line: string) => {
    waiting = true;
    return write(line);
  };
  const timer = setInterval(() => {
    if (!waiting) return;
    waiting = false;
    try {
      destination.flush();
    } catch {
      clearInterval(timer); // ended (the process is exiting): pino has written what was left
    }
  }, LOG_FLUSH_MS);
  timer.unref();
  return destination;
}
