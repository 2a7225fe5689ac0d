import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

export interface MachineDescription {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  packages: Record<string, string>;
  date: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
}

/** `os.cpus()` shows a virtual machine's generic name; /proc/cpuinfo sometimes says more. */
function cpuModel(): string {
  const fromOs = os.cpus()[0]?.model?.trim() ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    const fromProc = line?.split(':')[1]?.trim();
    return fromProc && fromProc.length > fromOs.length ? fromProc : fromOs;
  } catch {
    return fromOs;
  }
}

function packageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function describeMachine(postgresVersion: string): MachineDescription {
  return {
    cpuModel: cpuModel(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: postgresVersion,
    packages: Object.fromEntries(['autocannon', 'express', 'pg', 'pino', 'ajv'].map((p) => [p, packageVersion(p)])),
    date: new Date().toISOString(),
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
