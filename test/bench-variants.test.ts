/**
 * Which servers each benchmark scenario runs (bench/servers/scenarios/variants.ts and idle.ts),
 * checked against the registry as it is: the rules are by traits and variants, so a new lab
 * falls under them without an edit, and every case below is generated from what the registry has.
 */

import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../bench/servers/options.js';
import { SCENARIOS } from '../bench/servers/scenarios/index.js';
import { LAB_TARGETS, PLAIN_NODE, REFERENCE, type TargetSpec } from '../bench/servers/targets.js';
import { oneEventLoop } from '../bench/kit/labs.js';

const full = parseBenchArgs([]);
const quick = parseBenchArgs(['--quick']);
const scenario = (id: string) => SCENARIOS.find((s) => s.id === id)!;
const runs = (id: string, target: TargetSpec, settings = full) => scenario(id).leaveOut?.(target, settings) === undefined;
const all = [...LAB_TARGETS, PLAIN_NODE, REFERENCE];

describe('bench variants per scenario', () => {
  it('every scenario runs the first variant of every lab, or says why not', () => {
    for (const s of SCENARIOS) {
      for (const target of LAB_TARGETS.filter((t) => t.variantIndex === 0)) {
        const why = s.leaveOut?.(target, full);
        expect(why, `${s.id} leaves out ${target.id}`).toBeUndefined();
      }
    }
  });

  it('raw echo: every variant of a one-core lab, the first of a multi-core one, both references', () => {
    for (const target of all) expect(runs('echo', target), target.id).toBe(!(target.multiCore && target.variantIndex > 0));
  });

  it('idle connections: every lab (each stops where it cannot hold a level), one-core labs in every variant, and the C reference', () => {
    for (const target of all) {
      const expected = target === REFERENCE || (target.kind === 'lab' && !(target.multiCore && target.variantIndex > 0));
      expect(runs('idle', target), target.id).toBe(expected);
      // A quick run keeps them all: the variants are this scenario's lesson.
      expect(runs('idle', target, quick), target.id).toBe(runs('idle', target));
    }
  });

  it('CPU-bound: every variant of a multi-core lab, the first of any other', () => {
    for (const target of LAB_TARGETS) expect(runs('cpu', target), target.id).toBe(target.multiCore || target.variantIndex === 0);
  });

  it('HTTP, churn and capacity: the first variant of each lab, and no plain-Node row', () => {
    for (const id of ['http', 'churn', 'capacity']) {
      for (const target of LAB_TARGETS) expect(runs(id, target), `${id} ${target.id}`).toBe(target.variantIndex === 0);
      expect(runs(id, PLAIN_NODE)).toBe(false);
      expect(runs(id, REFERENCE)).toBe(true);
    }
  });

  it('a quick run measures one variant per lab outside the idle scenario', () => {
    for (const s of SCENARIOS.filter((x) => x.id !== 'idle')) {
      for (const target of LAB_TARGETS.filter((t) => t.variantIndex > 0)) expect(runs(s.id, target, quick), `${s.id} ${target.id}`).toBe(false);
    }
  });
});
