/**
 * The module graph of shared/ and labs/, read statically from the sources: no circle (a module
 * that, through its imports, imports itself), and nothing in shared/ that imports from labs/
 * (types both sides need live in shared/). Every import counts, type-only ones and re-exports
 * included, and dynamic `import('./x.js')` with a literal path too: a circle of types is still a
 * circle a reader has to untangle.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/launch.js';

const ROOTS = ['shared', 'labs'];

function sources(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir)).flatMap((name) => {
    const relative = path.join(dir, name);
    if (statSync(path.join(repoRoot, relative)).isDirectory()) return sources(relative);
    return name.endsWith('.ts') ? [relative] : [];
  });
}

/** Every relative module a source names: `import … from`, `export … from`, `import '…'` and `import('…')`. */
export function importsOf(file: string, text: string): string[] {
  const named = [...text.matchAll(/(?:\bfrom\s+|\bimport\s+|\bimport\(\s*)'(\.{1,2}\/[^']+)'/g)].map((match) => match[1]!);
  return named.map((specifier) => path.join(path.dirname(file), specifier.replace(/\.js$/, '.ts')));
}

/** The first circle found, as the files around it (the first repeated at the end), or undefined. */
export function findCircle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): string[] | undefined => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const circle = visit(next);
        if (circle) return circle;
      }
    }
    stack.pop();
    state.set(file, 'done');
    return undefined;
  };
  for (const file of graph.keys()) {
    if (state.get(file) !== undefined) continue;
    const circle = visit(file);
    if (circle) return circle;
  }
  return undefined;
}

const files = ROOTS.flatMap(sources);
const graph = new Map(files.map((file) => [file, importsOf(file, readFileSync(path.join(repoRoot, file), 'utf8'))]));

describe('the import graph of shared/ and labs/', () => {
  it('reads the imports it should (a check of the scan itself)', () => {
    expect(graph.get('shared/protocols.ts')).toEqual(expect.arrayContaining(['shared/chat.ts', 'shared/files.ts', 'shared/protocol.ts']));
    // A type-only import, a re-export and a dynamic import are edges too.
    expect(importsOf('shared/a.ts', "import type { X } from './x.js';\nexport { Y } from '../labs/y.js';\nconst l = await import('./libc.js');")).toEqual([
      'shared/x.ts',
      'labs/y.ts',
      'shared/libc.ts',
    ]);
    expect(findCircle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]))).toEqual(['a', 'b', 'c', 'a']);
    expect(findCircle(new Map([['a', ['b']], ['b', ['c']], ['c', []]]))).toBeUndefined();
  });

  it('has no circle', () => {
    expect(findCircle(graph)).toBeUndefined();
  });

  it('has no import from shared/ into labs/', () => {
    const inward = [...graph].flatMap(([file, imports]) => (file.startsWith('shared/') ? imports.filter((target) => target.startsWith('labs/')).map((target) => `${file} -> ${target}`) : []));
    expect(inward).toEqual([]);
  });
});
