/**
 * results/README.md's lab at a glance is generated from the committed results files
 * (bench/glance.ts): computed again here, it must be exactly what the README says, with a row per
 * lab the reports measured, each figure linked to its report.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { figureIn, markedFigures } from '../bench/readme-figures.js';
import { GLANCE_FILE, glanceTable } from '../bench/glance.js';
import { repoRoot } from '../harness/launch.js';

describe('the lab at a glance', () => {
  it('says exactly what the committed reports say, a row per lab, each figure linked to its report', async () => {
    const expected = await glanceTable();
    const readme = readFileSync(GLANCE_FILE, 'utf8');
    const marked = markedFigures(readme).filter((f) => f.name === 'glance/table');
    expect(marked, 'one glance/table marker pair in results/README.md').toHaveLength(1);
    expect(marked[0]!.text, 'stale: run node --import tsx bench/glance.ts').toBe(figureIn(expected, path.relative(repoRoot, GLANCE_FILE)));
    const bench = JSON.parse(readFileSync(path.join(repoRoot, 'results', 'bench.json'), 'utf8')) as { labs: { label: string }[] };
    const rows = marked[0]!.text.split('\n').slice(2);
    expect(rows.map((row) => row.split(' | ')[0]!.replace(/^\| /, ''))).toEqual(expect.arrayContaining(bench.labs.map((lab) => lab.label)));
    for (const row of rows) expect(row).toMatch(/\]\((bench|chat|backlog|syscalls)\.md#summary\)/);
  });
});
