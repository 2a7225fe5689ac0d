/**
 * Adds a generated table to the two registration lists (openapi/tables.ts, functions/tableHandlers.ts):
 * one import and one entry each, above the `add-table:` markers. Adding twice changes nothing.
 */
export interface Registration {
  file: string;
  importLine: string;
  entryLine: string;
}

export function register(source: string, registration: Registration): string {
  if (source.includes(registration.importLine)) return source;
  const importMarker = source.indexOf('// add-table: imports');
  const entryMarker = source.indexOf('  // add-table: entries');
  if (importMarker === -1 || entryMarker === -1) {
    throw new Error(`${registration.file} has lost its "// add-table:" markers: add the import and entry by hand`);
  }
  const withEntry = `${source.slice(0, entryMarker)}  ${registration.entryLine}\n${source.slice(entryMarker)}`;
  return `${withEntry.slice(0, importMarker)}${registration.importLine}\n${withEntry.slice(importMarker)}`;
}
