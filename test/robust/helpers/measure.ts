/**
 * Measured values of the robust cases (memory growth, CPU while saturated), printed with the test
 * output and, when ROBUST_MEASUREMENTS names a file, appended to it as JSON lines, so a run's
 * bounds can be quoted without scraping the console.
 */

import { appendFileSync } from 'node:fs';

export function recordMeasurement(testCase: string, lab: string, values: Record<string, number | string>): void {
  const shown = Object.entries(values)
    .map(([key, value]) => `${key}=${typeof value === 'number' ? Math.round(value * 10) / 10 : value}`)
    .join(' ');
  console.log(`[measured] ${testCase} · ${lab}: ${shown}`);
  const file = process.env.ROBUST_MEASUREMENTS;
  if (file) appendFileSync(file, `${JSON.stringify({ case: testCase, lab, ...values })}\n`);
}

export const toMiB = (bytes: number) => bytes / (1024 * 1024);
