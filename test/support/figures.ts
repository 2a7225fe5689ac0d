import { appendFileSync } from 'node:fs';

/**
 * One line of figures per reliability scenario, on stdout (shown by the test runner), and as JSON
 * lines in RELIABILITY_FIGURES_FILE when set: docs/RELIABILITY.md is filled from a real run.
 */
export function reportFigures(scenario: string, figures: Record<string, string | number | boolean>): void {
  const text = Object.entries(figures).map(([name, value]) => `${name}=${typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(1) : value}`);
  console.log(`reliability: ${scenario} | ${text.join(' ')}`);
  const file = process.env.RELIABILITY_FIGURES_FILE;
  if (file) appendFileSync(file, `${JSON.stringify({ scenario, ...figures, at: new Date().toISOString() })}\n`);
}
