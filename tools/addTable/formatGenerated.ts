import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Formats one file's text as `npm run format` would; see projectFormatter. */
export type FormatSource = (path: string, text: string) => string;

/**
 * The project's own formatter (Biome, configured by biome.json in `root`), for the files add-table
 * writes: the templates stay readable as templates, and what lands in the project passes
 * `npm run lint` as written and is left unchanged by `npm run format`. Where line breaks fall
 * depends on each table's names and descriptions, so only the formatter itself can say.
 * Undefined when Biome is not installed in `root` (an install without dev dependencies): the
 * files are then written as generated.
 */
export function projectFormatter(root: string): FormatSource | undefined {
  const biome = join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  if (!existsSync(biome)) return undefined;
  return (path, text) => {
    // --stdin-file-path: the path picks the language and the configuration that applies; the text comes from stdin.
    const result = spawnSync(process.execPath, [biome, 'format', `--stdin-file-path=${path}`], { cwd: root, input: text, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`biome format ${path} failed: ${(result.stderr || result.stdout).trim()}`);
    return result.stdout;
  };
}
