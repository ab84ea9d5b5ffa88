/**
 * The chat exercise's stages. The protocol is the lab's own, reduced to what every chat server
 * shares (smallchat's): a member's complete line (ended by `\n`) goes to every OTHER member as
 * `NAME: line\n`, NAME being whatever the server calls that member. Lines that begin with `* `
 * are the server's notices (a welcome, "joined", "left"): the checker reads past them.
 */

import { randomBytes } from 'node:crypto';
import { connectionQueues } from '../../harness/sockets.js';
import { countedBytes, type Probe, seconds } from './probe.js';
import type { Stage, StageContext } from './run.js';
import { fail, type Lesson, until } from './stages.js';

/** A relayed line that does not come in this long has not come. */
const RELAY_MS = 5_000;

/** A member's complete lines so far, notices left out. */
function said(member: Probe): string[] {
  const text = member.received().toString('latin1');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .slice(0, -1)
    .filter((line) => !line.startsWith('* '));
}

/** True when `member` has a line relaying `text` (`NAME: text`). */
const heard = (member: Probe, text: string) => said(member).some((line) => line.endsWith(`: ${text}`));

/**
 * Members connected and in the room: the last one's lines reach every other one (it says a line
 * again every half second until they all have it, since a member counts only once the server has
 * accepted it). A StageFailure when the room never forms.
 */
async function room(context: StageContext, count: number, lesson: Lesson): Promise<Probe[]> {
  const members: Probe[] = [];
  for (let i = 0; i < count; i++) members.push(await context.open());
  const speaker = members[count - 1]!;
  const listeners = members.slice(0, -1);
  const token = `here ${randomBytes(4).toString('hex')}`;
  const deadline = performance.now() + RELAY_MS * 2;
  while (performance.now() < deadline) {
    speaker.send(`${token}\n`);
    const all = await until(() => (listeners.every((member) => heard(member, token)) ? true : undefined), 500);
    if (all) return members;
  }
  const missing = listeners.filter((member) => !heard(member, token)).length;
  return fail(
    `${count} members joined and one said "${token}" every half second for ${seconds(RELAY_MS * 2)}; ${missing} of the other ${count - 1} never got it (received: ${countedBytes(listeners[0]!.received())})`,
    lesson,
  );
}

export function relaysToOthers(lesson: Lesson): Stage {
  return {
    name: 'a line reaches every other member',
    boundMs: 30_000,
    async run(context) {
      const [a, b, c] = await room(context, 3, lesson);
      const text = `hello from a ${randomBytes(4).toString('hex')}`;
      a!.send(`${text}\n`);
      for (const [name, member] of [['b', b!], ['c', c!]] as const) {
        const ok = await member.waitFor(() => heard(member, text), RELAY_MS);
        if (!ok) fail(`member a said "${text}"; member ${name} expected a line "NAME: ${text}\\n", and received ${countedBytes(member.received())}`, lesson);
      }
    },
  };
}

export function notToSender(lesson: Lesson): Stage {
  return {
    name: 'never sends a line back to its sender',
    boundMs: 30_000,
    async run(context) {
      const [a, b] = await room(context, 2, lesson);
      const text = `only for b ${randomBytes(4).toString('hex')}`;
      a!.send(`${text}\n`);
      await b!.waitFor(() => heard(b!, text), RELAY_MS);
      // b answers; by the time a has b's answer, a line of its own sent back would be there too.
      const reply = `b answers ${randomBytes(4).toString('hex')}`;
      b!.send(`${reply}\n`);
      await a!.waitFor(() => heard(a!, reply), RELAY_MS);
      const own = said(a!).find((line) => line.endsWith(text) || line === text);
      if (own !== undefined) fail(`member a said "${text}" and got its own line back: ${JSON.stringify(`${own}\n`)}`, lesson);
    },
  };
}

export function wholeLines(lesson: Lesson): Stage {
  return {
    name: 'a line split across two packets arrives whole',
    boundMs: 30_000,
    async run(context) {
      const [a, b] = await room(context, 2, lesson);
      a!.socket.setNoDelay(true);
      const text = `split ${randomBytes(4).toString('hex')} in two`;
      const cut = 9;
      a!.send(text.slice(0, cut));
      // The first part has been read by the server (its socket's receive queue is empty) before the rest is sent.
      const deadline = performance.now() + RELAY_MS;
      while (performance.now() < deadline && (connectionQueues(context.port, a!.localPort)?.serverUnread ?? 1) > 0) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      a!.send(`${text.slice(cut)}\n`);
      // Decided as soon as b has a line that ends with the second part: whole, or cut.
      await b!.waitFor(() => said(b!).some((line) => line.endsWith(text.slice(cut))), RELAY_MS);
      if (!heard(b!, text)) {
        fail(`member a sent "${text.slice(0, cut)}", then "${text.slice(cut)}\\n"; member b expected one line "NAME: ${text}\\n", and received ${countedBytes(b!.received())}`, lesson);
      }
    },
  };
}

/** How many lines, of how many bytes, the speaker sends past the member that never reads. */
const FLOOD_LINES = 8192;
const FLOOD_LINE_BYTES = 1000;
/**
 * The speaker sends its lines in batches and keeps at most this many ahead of the member that
 * reads, so that a reader is never the one whose queue passes the server's bound (1 MiB in the
 * skeletons): on a busy machine the checker itself reads slowly, and a server that reads the
 * speaker at full speed would otherwise cut off a member that is reading, only later.
 */
const FLOOD_BATCH_LINES = 128;
const FLOOD_AHEAD_LINES = 384;
/** No new byte at the member that reads for this long is a stall. */
const STALL_MS = 3_000;

export function slowMemberDoesNotStall(lesson: Lesson): Stage {
  return {
    name: 'a member that never reads does not stall the room',
    boundMs: 60_000,
    async run(context) {
      const [sleeper, listener, speaker] = await room(context, 3, lesson);
      sleeper!.socket.pause();
      const filler = 'x'.repeat(FLOOD_LINE_BYTES - 12);
      const lines = Array.from({ length: FLOOD_LINES }, (_, i) => `${String(i).padStart(6, '0')} ${filler}\n`);
      const start = listener!.received().length;
      const stalled = () => {
        const got = said(listener!).filter((line) => line.endsWith(filler)).length;
        const how = listener!.ended ? 'then it was cut off' : `then nothing for ${STALL_MS / 1000} s`;
        return fail(`one member reads nothing while another says ${FLOOD_LINES} lines of ${FLOOD_LINE_BYTES} bytes, never more than ${FLOOD_AHEAD_LINES + FLOOD_BATCH_LINES} ahead of a third, which received ${got} of them, ${how}`, lesson);
      };
      // Waits until the listener has `bytes` past its start; new bytes within STALL_MS each time.
      const reach = async (bytes: number) => {
        for (;;) {
          const before = listener!.received().length;
          if (await listener!.waitFor(() => listener!.received().length - start >= bytes, STALL_MS)) return;
          if (listener!.received().length === before || listener!.ended) stalled();
        }
      };
      for (let sent = 0; sent < FLOOD_LINES; sent += FLOOD_BATCH_LINES) {
        // Each relayed line is the line and the speaker's name: at least FLOOD_LINE_BYTES.
        await reach(Math.max(0, sent - FLOOD_AHEAD_LINES) * FLOOD_LINE_BYTES);
        speaker!.send(lines.slice(sent, sent + FLOOD_BATCH_LINES).join(''));
      }
      // Only the end of what came is searched for the last line: the whole of it, 8 MiB, on every
      // arrival would be quadratic.
      const tail = Buffer.from(`: ${lines[FLOOD_LINES - 1]!}`);
      for (;;) {
        const before = listener!.received().length;
        if (await listener!.waitFor(() => listener!.received().subarray(-2 * tail.length).includes(tail), STALL_MS)) return;
        if (listener!.received().length === before || listener!.ended) stalled();
      }
    },
  };
}
