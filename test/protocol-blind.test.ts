/**
 * Every lab carries out the connection contract's actions (shared/conversation.ts) its own way and
 * never asks which protocol it serves: read statically, no lab's code names a protocol (a string
 * 'echo', 'http', 'chat' or 'files', a look at `protocol.protocol`) nor imports one protocol's own
 * module. The user's choice is passed on whole, as `options.protocol`, to shared/protocols.ts.
 *
 * The registry (labs/index.ts) is data, not a lab: it lists which protocols each lab serves.
 * Comments are left out; a lab's tests may name what they test.
 */

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/launch.js';
import { LABS } from '../labs/index.js';
import { PROTOCOLS } from '../shared/conversation.js';

/** The modules that belong to one protocol alone: a lab that imports one has asked which it serves. */
const ONE_PROTOCOL_MODULES = ['shared/chat.ts', 'shared/files.ts', 'shared/http-framing.ts', 'shared/http-parser.ts'];

function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '').replace(/\s\/\/ .*$/gm, '');
}

/** What in `text` names a protocol, one line each. */
export function protocolMentions(file: string, text: string): string[] {
  const code = withoutComments(text);
  const found: string[] = [];
  for (const name of PROTOCOLS) if (new RegExp(`['"\`]${name}['"\`]`).test(code)) found.push(`${file}: the string '${name}'`);
  if (/\.protocol\.protocol\b/.test(code)) found.push(`${file}: looks at protocol.protocol`);
  for (const match of code.matchAll(/from\s+'(\.{1,2}\/[^']+)'/g)) {
    const target = path.join(path.dirname(file), match[1]!.replace(/\.js$/, '.ts'));
    if (ONE_PROTOCOL_MODULES.includes(target)) found.push(`${file}: imports ${target}`);
  }
  return found;
}

const labFiles = LABS.flatMap((lab) =>
  readdirSync(path.join(repoRoot, 'labs', lab.id))
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))
    .map((name) => path.join('labs', lab.id, name)),
);

describe('labs are blind to the protocol', () => {
  it('the check finds what it should (a check of the check)', () => {
    expect(protocolMentions('labs/x/server.ts', "if (options.protocol.protocol === 'chat') {}")).toEqual([
      "labs/x/server.ts: the string 'chat'",
      'labs/x/server.ts: looks at protocol.protocol',
    ]);
    expect(protocolMentions('labs/x/server.ts', "import { ChatSession } from '../../shared/chat.js';")).toEqual(['labs/x/server.ts: imports shared/chat.ts']);
    expect(protocolMentions('labs/x/server.ts', "// a comment about 'http' is fine\nconst room = new LocalRoom();")).toEqual([]);
    expect(labFiles).toContain('labs/05-event-loop/server.ts');
  });

  it('no lab file names a protocol', () => {
    expect(labFiles.flatMap((file) => protocolMentions(file, readFileSync(path.join(repoRoot, file), 'utf8')))).toEqual([]);
  });
});
