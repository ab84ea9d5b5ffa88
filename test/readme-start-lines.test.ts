/**
 * The READMEs' quoted start lines, checked against the labs: every `[lab] listening on ...` line
 * that a README (the top one, each lab's, any under bench/) shows in a transcript is what that lab
 * prints today when started as the transcript's own command says (`$ make lab-05 TRIGGER=edge`,
 * `$ node dist/labs/04-evented/main.js --port 8080`). Only the port and the pid may differ, as
 * they do on every run. A README that keeps an old model text, shows a variant other than the
 * one its command starts, or elides the line fails here with both lines; so does a quoted line
 * with no command above it in its block, since nobody could check it.
 *
 * Each distinct command is started once, all of them at once, on port 0.
 */

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, startLab, stopAllLabs, type LabProcess } from '../harness/launch.js';
import { findLab, LABS, type LabInfo } from '../labs/index.js';
import { labFlags } from '../labs/make-flags.js';

/** The Markdown files a reader follows: the top README, every lab's, and bench's (not results/, which is generated). */
function markdownFiles(): string[] {
  const under = (dir: string): string[] =>
    readdirSync(path.join(repoRoot, dir), { withFileTypes: true }).flatMap((entry) => {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : under(file);
      return entry.name.endsWith('.md') ? [file] : [];
    });
  return ['README.md', ...under('labs'), ...under('bench')];
}

interface Quote {
  readonly file: string;
  /** 1-based, for the failure message. */
  readonly line: number;
  readonly text: string;
  /** The `$ ...` command above it in its code block, without the `$ `; undefined when there is none. */
  readonly command: string | undefined;
}

const LISTENING = /^\[[^\]]+\] listening on /;

/** Every quoted listening line, with the command nearest above it in the same fenced block. */
function quotes(): Quote[] {
  const found: Quote[] = [];
  for (const file of markdownFiles()) {
    let fenced = false;
    let command: string | undefined;
    readFileSync(path.join(repoRoot, file), 'utf8')
      .split('\n')
      .forEach((text, index) => {
        if (/^\s*```/.test(text)) {
          fenced = !fenced;
          command = undefined;
        } else if (fenced && text.startsWith('$ ')) {
          command = text.slice(2).replace(/\s+#.*$/, '').trim();
        } else if (LISTENING.test(text)) {
          found.push({ file, line: index + 1, text, command: fenced ? command : undefined });
        }
      });
  }
  return found;
}

/** Shell words, with '…' and "…" quoting (enough for the READMEs' commands). */
function words(command: string): string[] {
  return [...command.matchAll(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g)].map((m) => m[0].replace(/'([^']*)'|"([^"]*)"/g, '$1$2'));
}

/** Drops `--port N` / `--port=N`: the check runs on a free port (startLab adds `--port 0`). */
function withoutPort(args: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') i++;
    else if (!args[i]!.startsWith('--port=')) kept.push(args[i]!);
  }
  return kept;
}

/**
 * The lab and flags a README command starts: `make lab-NN VAR=value ...` through the same
 * variables `make` passes to labs/run.ts, or `node dist/labs/ID/main.js FLAGS`. Undefined for a
 * command that starts no lab.
 */
function launchOf(command: string): { info: LabInfo; args: string[] } | undefined {
  const [program, target, ...rest] = words(command);
  if (program === 'make' && target?.startsWith('lab-')) {
    const info = findLab(target.slice('lab-'.length));
    if (!info) return undefined;
    const env = Object.fromEntries(rest.filter((w) => w.includes('=')).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
    return { info, args: withoutPort(labFlags(info, env)) };
  }
  const entry = program === 'node' ? /^dist\/labs\/([^/]+)\/main\.js$/.exec(target ?? '') : null;
  const info = entry ? LABS.find((lab) => lab.id === entry[1]) : undefined;
  return info ? { info, args: withoutPort(rest) } : undefined;
}

/** What may differ between two runs of the same command: the port and the pid. */
function normalised(line: string): string {
  return line.replace(/( listening on [^\s:]+):\d+ /, '$1:PORT ').replace(/; pid \d+\)$/, '; pid PID)');
}

const quoted = quotes();
/** One start per distinct (lab, flags), shared by every quote of it. */
const starts = new Map<string, Promise<LabProcess>>();
function started(info: LabInfo, args: string[]): Promise<LabProcess> {
  const key = JSON.stringify([info.id, args]);
  if (!starts.has(key)) starts.set(key, startLab(info.id, args));
  return starts.get(key)!;
}

afterAll(async () => {
  await Promise.allSettled([...starts.values()].map(async (lab) => (await lab).stop()));
  await stopAllLabs();
});

describe('README start lines', () => {
  it('finds quoted listening lines, each under the command that printed it', () => {
    expect(quoted.length).toBeGreaterThan(0);
    const orphans = quoted.filter((q) => q.command === undefined || launchOf(q.command) === undefined);
    expect(orphans.map((q) => `${q.file}:${q.line}: no "$ make lab-NN ..." or "$ node dist/labs/ID/main.js ..." above it in its block`)).toEqual([]);
  });

  const checkable = quoted.flatMap((q) => {
    const launch = q.command === undefined ? undefined : launchOf(q.command);
    return launch ? [{ ...q, ...launch }] : [];
  });
  // Every start at once, before the first case waits for one: a few seconds in all, not one per quote.
  for (const { info, args } of checkable) void started(info, args).catch(() => undefined);

  it.each(checkable.map((q) => [`${q.file}:${q.line} (${q.command})`, q] as const))('%s is what the lab prints', async (_, q) => {
    const lab = await started(q.info, q.args);
    const printed = await lab.waitForLine(LISTENING);
    expect(normalised(q.text), `${q.file}:${q.line} quotes a line that \`${q.command}\` no longer prints`).toBe(normalised(printed));
  });
});
