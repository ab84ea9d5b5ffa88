/**
 * `make chat`: the chat room (PROTOCOL=chat) in every lab that keeps one with more than one
 * member. For rooms of 10, 100 and 1,000 members with 1 and 10 senders: fan-out latency (send to
 * the last recipient's arrival) and delivered messages per second, the server's CPU per delivered
 * message and the load generator's own; then the slow-reader case, the same room without and
 * with one member that never reads. Writes results/chat.json and renders results/chat.md from it.
 *
 *   make chat               the full run (about 7 minutes)
 *   make chat QUICK=1       a short check, into results/quick/
 *   node --import tsx bench/chat/main.ts --help
 *
 * The load comes from bench/load/c-chat-client.c (one C epoll loop): each sender keeps one
 * message in flight and sends the next once every reading member has it, so the rate is what the
 * server sustains at that fan-out, and the latency is the fan-out's own.
 */

import { plural } from '../../shared/log.js';
import { LABS, labVariants } from '../../labs/index.js';
import { startLab, type LabProcess } from '../../harness/launch.js';
import { runCChatClient, type CChatResult } from '../load/c-chat.js';
import { childPids, fdTargets, processTree } from '../../harness/processes.js';
import { describeLabs } from '../kit/labs.js';
import { defineExperiment, runMain, type Body, type Run } from '../kit/experiment.js';
import type { Settings } from '../kit/command-line.js';
import { WindowSampler } from '../kit/tree-sampler.js';
import { renderChat } from './render.js';
import { CHAT_SCHEMA, type ChatCell, type ChatReport, type ChatRun, type ChatTarget } from './results.js';

const SENDERS = [1, 10];
/** Bytes per message line: a short chat line. */
const SIZE = 64;
/** The slow-reader case: long lines, so the stuck member's kernel buffers fill within seconds. */
const SLOW = { members: 50, size: 4000 };
/** Room for every member plus the stuck one, beyond the default --max-conns of 1000. */
const MAX_CONNS = 1100;

const CHAT_LABS = LABS.filter((lab) => lab.protocols.includes('chat')).map((lab) => lab.id);
const OPTIONS = {
  seconds: { type: 'number', default: 2, quick: 1, min: 0.5, max: 60, describe: 'measured seconds per cell' },
  labs: { type: 'list', default: CHAT_LABS, choices: CHAT_LABS, describe: 'labs to measure (every lab that lists chat)' },
  variants: { type: 'list', describe: 'variant names to measure, e.g. handoff [default: every variant of each lab]' },
  rooms: { type: 'numbers', default: [10, 100, 1000], quick: [10, 100], min: 2, max: 1000, describe: 'room sizes' },
  senders: { type: 'numbers', default: SENDERS, min: 1, max: 100, describe: 'sender counts' },
  slow: { type: 'boolean', default: true, describe: 'the slow-reader case after the rooms (--no-slow leaves it out)' },
} as const;

/** Why a lab cannot hold a room of `members` (its model), or undefined. */
function roomLimit(lab: { id: string; traits: { children: boolean }; defaults: { maxConns?: number } }, members: number): string | undefined {
  const cap = lab.defaults.maxConns;
  if (lab.traits.children && cap !== undefined && members > cap) {
    return `each member is a whole Node process (tens of MB), and the lab caps its children at ${cap}`;
  }
  return undefined;
}

/** Sockets open in the server's whole process tree (listening sockets, lab 02's IPC channels, clients). */
const socketsOf = (pid: number) => processTree(pid).reduce((sum, each) => sum + fdTargets(each).filter((target) => target.startsWith('socket:')).length, 0);

/**
 * Before a cell: the last cell's members are gone from the server, every one of them closed, so
 * the server holds no more sockets than it did before the first cell (`idleSockets`), and lab
 * 02's children have exited. The load generator's exit is not enough: a server still delivering
 * a backlog when it exits sees the closes late, and a room of 1,000 arriving then met
 * --max-conns with the last room's members still counted (lab 06 with handoff refused 455 of a
 * new room's members so).
 */
async function atRest(lab: LabProcess, idleSockets: number, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let open = 0;
  while (childPids(lab.pid).length > 0 || (open = socketsOf(lab.pid) - idleSockets) > 0) {
    if (performance.now() > deadline) throw new Error(`the last room's members were still there after ${timeoutMs / 1000} s (${open > 0 ? `${plural(open, 'socket')} still open` : 'children still running'})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function runCell(lab: LabProcess, idleSockets: number, members: number, senders: number, stuck: number, size: number, seconds: number, warmupS: number): Promise<ChatRun> {
  await atRest(lab, idleSockets);
  const sampler = new WindowSampler(lab.pid);
  const cutBefore = (lab.output().stderr.match(/ cut off \(/g) ?? []).length;
  let usage: ReturnType<WindowSampler['stop']> | undefined;
  const result: CChatResult = await runCChatClient({
    port: lab.port,
    members,
    senders,
    stuck,
    size,
    warmupSeconds: warmupS,
    seconds,
    onWindowStart: () => sampler.start(),
    onWindowEnd: () => (usage = sampler.stop()),
  });
  usage ??= sampler.stop();
  return {
    members,
    senders,
    stuck,
    size,
    joinS: result.joinS,
    windowS: result.windowS,
    messages: result.messages,
    deliveries: result.deliveries,
    deliveriesPerSec: result.deliveriesPerSec,
    latencyUs: result.latencyUs,
    serverCpuMs: usage.serverCpuMs,
    serverPeakRssBytes: usage.peakRssBytes,
    loadGenCoreFraction: result.cpu.fraction,
    cutOff: (lab.output().stderr.match(/ cut off \(/g) ?? []).length - cutBefore,
    errors: result.errors,
    ...(result.firstError ? { firstError: result.firstError } : {}),
  };
}

async function measure(settings: Settings<typeof OPTIONS>, run: Run): Promise<Body<ChatReport>> {
  const warmupS = settings.quick ? 0.3 : 1;
  const slowSeconds = settings.quick ? 3 : 5;
  const chosen = labVariants((lab) => lab.protocols.includes('chat') && (settings.labs.includes(lab.id)));
  const leftOut = chosen
    .filter(({ lab, variant }) => lab.traits.kernelQueueOnly && variant === lab.variants[0])
    .map(({ lab }) => ({ lab: lab.id, reason: 'its room never has more than one member (the others wait in the accept queue), so no message reaches anyone' }));
  const measured = chosen.filter(({ lab, variant }) => !lab.traits.kernelQueueOnly && (settings.variants === undefined || settings.variants.includes(variant.name)));
  const cellSeconds = warmupS + settings.seconds + 1.5;
  const planned = measured.length * (settings.rooms.length * settings.senders.length * cellSeconds + 2 * (warmupS + slowSeconds + 2) + 2);
  const progress = run.progress(planned);
  const targets: ChatTarget[] = [];
  for (const { lab, variant, title } of measured) {
    const runs: ChatRun[] = [];
    const skipped: { members: number; reason: string }[] = [];
    // Until the case runs, why it has not: the placeholder that stands if a room fails first.
    let slow: ChatTarget['slow'] | undefined;
    /** The cell under way, so that a failure names it. */
    let cell: ChatCell | undefined;
    let server: LabProcess | undefined;
    try {
      server = await startLab(lab.id, [...variant.args, '--quiet', '--protocol', 'chat', ...(lab.traits.children ? [] : ['--max-conns', String(MAX_CONNS)])]);
      const idleSockets = socketsOf(server.pid);
      for (const members of settings.rooms) {
        const limit = roomLimit(lab, members);
        if (limit) {
          skipped.push({ members, reason: limit });
          continue;
        }
        for (const senders of settings.senders) {
          cell = { members, senders };
          progress.step(`${title}: ${members} members, ${senders} sender${senders > 1 ? 's' : ''}`, cellSeconds);
          const run = await runCell(server, idleSockets, members, senders, 0, SIZE, settings.seconds, warmupS);
          if (run.errors.total > 0) progress.note(`${title} ${members}×${senders}: ${run.errors.total} errors (${run.firstError})`);
          runs.push(run);
        }
      }
      cell = undefined;
      const slowLimit = roomLimit(lab, SLOW.members + 1);
      const slowMembers = SLOW.members;
      if (!settings.slow) {
        slow = { skipped: 'left out of this run (--no-slow)' };
      } else if (slowLimit) {
        slow = { skipped: slowLimit };
      } else {
        cell = { members: slowMembers, senders: 1, slow: true };
        progress.step(`${title}: slow reader, ${slowMembers} members without, then with one that never reads`, 2 * (warmupS + slowSeconds + 2));
        const without = await runCell(server, idleSockets, slowMembers, 1, 0, SLOW.size, slowSeconds, warmupS);
        const withStuck = await runCell(server, idleSockets, slowMembers, 1, 1, SLOW.size, slowSeconds, warmupS);
        slow = { without, with: withStuck };
      }
      targets.push({ lab: lab.id, label: lab.label, variant: variant.name, runs, slow: slow!, skipped });
    } catch (error) {
      const failed = error instanceof Error ? error.message : String(error);
      progress.note(`${title}: ${failed}`);
      // Said once, where it happened; the slow-reader row of a run that stopped before it says so.
      const where = cell === undefined ? 'before the first room' : `at ${cell.members} members, ${cell.senders} sender${cell.senders > 1 ? 's' : ''}, before this case`;
      slow ??= { skipped: cell?.slow ? failed : `the run stopped ${where}` };
      targets.push({ lab: lab.id, label: lab.label, variant: variant.name, runs, slow, skipped, failed, ...(cell ? { failedAt: cell } : {}) });
    } finally {
      await server?.stop('SIGTERM', 15_000).catch(() => undefined);
    }
  }
  progress.done();
  return {
    labs: describeLabs(chosen.map(({ lab }) => lab.id)),
    results: {
      settings: { rooms: settings.rooms, senders: settings.senders, size: SIZE, warmupS, seconds: settings.seconds, slow: { ...SLOW, seconds: slowSeconds } },
      leftOut,
      targets,
    },
  };
}

export const chat = defineExperiment({
  name: 'chat',
  title: 'Chat: one room, every model',
  about: 'The chat room in every lab: fan-out latency, delivered messages/s, CPU per message, a slow reader; writes results/chat.{json,md}.',
  schema: CHAT_SCHEMA,
  options: OPTIONS,
  render: renderChat,
  measure,
});

runMain(chat, import.meta.url);
