/**
 * The chat core on its own, fed bytes directly: the line framing (shared/chat.ts) and the room
 * (shared/room.ts), with no sockets and no servers. Every member's received bytes are compared
 * whole, as latin1 (one character per byte), so a failure prints a readable diff.
 */

import { describe, expect, it } from 'vitest';
import { ChatSession, HARD_QUEUE_BYTES, HELP_REPLY, MAX_LINE_BYTES, OutputLimit, QUIT_REPLY, queueLimits, SOFT_QUEUE_BYTES, SOFT_QUEUE_MS, type ChatAction } from '../shared/chat.js';
import { HOLDER_WINDOW_BYTES, LocalRoom, RELAY_WINDOW_BYTES, RelayedRoom, RoomHub, type MemberId, type RoomPort } from '../shared/room.js';

/** Every action the chunks produce, and whether the session said close. */
function frame(chunks: (string | Buffer)[]): { actions: ChatAction[]; close: boolean } {
  const session = new ChatSession();
  const actions: ChatAction[] = [];
  let close = false;
  for (const chunk of chunks) {
    const step = session.receive(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    actions.push(...step.actions);
    close ||= step.close;
  }
  return { actions, close };
}

describe('chat framing', () => {
  it('one action per complete line, however TCP cut the bytes; \\r\\n as \\n; empty lines are nothing', () => {
    expect(frame(['hel', 'lo\nwor', 'ld\r\n', '\n', 'unfinished']).actions).toEqual([
      { kind: 'say', text: 'hello' },
      { kind: 'say', text: 'world' },
    ]);
  });

  it('binary bytes and NUL pass through as they are (latin1: one character per byte)', () => {
    const line = Buffer.from([0, 1, 0xff, 0xc3, 0xa9, 0x7f]);
    const { actions } = frame([Buffer.concat([line, Buffer.from('\n')])]);
    expect(actions).toEqual([{ kind: 'say', text: line.toString('latin1') }]);
  });

  it('/nick, /who and unknown commands', () => {
    expect(frame(['/nick alice\n/who\n/nick bad name!\n/shout hi\n']).actions).toEqual([
      { kind: 'nick', name: 'alice' },
      { kind: 'who' },
      { kind: 'reply', text: '* /nick NAME: a name is 1 to 32 letters, digits, _ or -\n' },
      { kind: 'reply', text: '* unknown command /shout (try /nick NAME or /who)\n' },
    ]);
  });

  it('a line of exactly the limit is a message; one byte more is one error line and close, in any cut', () => {
    const longest = 'x'.repeat(MAX_LINE_BYTES);
    expect(frame([`${longest}\n`]).actions).toEqual([{ kind: 'say', text: longest }]);
    const over = frame(['ok\n', longest.slice(0, 100), `${longest.slice(100)}y`, 'more\n']);
    expect(over.actions).toEqual([
      { kind: 'say', text: 'ok' },
      { kind: 'reply', text: `* line over ${MAX_LINE_BYTES} bytes: closing the connection\n` },
    ]);
    expect(over.close).toBe(true);
  });

  it('the limit does not count the line end: the longest line ending in CRLF is a message as it is ending in LF (issue 27)', () => {
    const longest = 'x'.repeat(MAX_LINE_BYTES);
    for (let cut = 0; cut <= longest.length + 2; cut += 1366) {
      const sent = `${longest}\r\n`;
      expect(frame([sent.slice(0, cut), sent.slice(cut)]).actions, `cut at ${cut}`).toEqual([{ kind: 'say', text: longest }]);
    }
    const over = frame([`${longest}y\r\n`]);
    expect(over.actions).toEqual([{ kind: 'reply', text: `* line over ${MAX_LINE_BYTES} bytes: closing the connection\n` }]);
    expect(frame([`${longest}\r`, 'y\n']).close, 'a CR inside the line counts').toBe(true);
    // One byte over with no newline yet is over at once (the server holds no line past its limit).
    expect(frame([`${longest}y`]).close, 'no wait for a newline').toBe(true);
  });

  it('the FIN drops an unfinished line and closes', () => {
    const session = new ChatSession();
    expect(session.receive(Buffer.from('half')).actions).toEqual([]);
    expect(session.end()).toEqual({ actions: [], close: true });
    expect(session.receive(Buffer.from('x\n')).actions).toEqual([]);
  });
});

/** A member that records every byte delivered to it, as latin1. */
class Ear {
  heard = '';
  /** What the room asked of its reading, in order (a relayed room's flow control). */
  holds: boolean[] = [];
  deliver(bytes: Buffer): void {
    this.heard += bytes.toString('latin1');
  }
  hold(held: boolean): void {
    this.holds.push(held);
  }
  take(): string {
    const heard = this.heard;
    this.heard = '';
    return heard;
  }
}

/** Feeds a member's bytes through a session into the room, as a lab's connection does. */
function send(room: RoomPort, id: MemberId, bytes: string): void {
  const session = new ChatSession();
  for (const action of session.receive(Buffer.from(bytes, 'latin1')).actions) room.act(id, action);
}

/** The same conversation against a room: what the labs' two kinds of room must both produce. */
function conversation(makeRoom: () => { room: RoomPort; settle: () => void }): void {
  const { room, settle } = makeRoom();
  const [a, b, c] = [new Ear(), new Ear(), new Ear()];
  const idA = room.join(a);
  settle();
  expect(a.take()).toBe('* you are user1; nobody else is here (/nick NAME, /who)\n');
  const idB = room.join(b);
  settle();
  expect(b.take()).toBe('* you are user2; here: user1 (/nick NAME, /who)\n');
  expect(a.take()).toBe('* user2 joined\n');
  const idC = room.join(c);
  send(room, idA, 'hello\n/nick alice\n');
  settle();
  expect(a.take()).toBe('* user3 joined\n* you are now alice\n');
  expect(b.take()).toBe('* user3 joined\nuser1: hello\n* user1 is now alice\n');
  expect(c.take()).toBe('* you are user3; here: user1, user2 (/nick NAME, /who)\nuser1: hello\n* user1 is now alice\n');
  send(room, idB, '/nick alice\n/who\n\x00bin\xff\n');
  settle();
  expect(b.take()).toBe('* alice is taken\n* here: alice, user2 (you), user3\n');
  // NUL made visible (issue 27 finding 5); the byte 0xff relayed as it is.
  expect(a.take()).toBe('user2: \\x00bin\xff\n');
  expect(c.take()).toBe('user2: \\x00bin\xff\n');
  room.leave(idC, 'too slow');
  settle();
  expect(a.take() + b.take()).toBe('* user3 left (too slow)\n'.repeat(2));
  // A quiet leave (the server shutting down) tells nobody; a message after it reaches nobody gone.
  room.leave(idB, undefined, false);
  send(room, idA, 'anyone?\n');
  settle();
  expect(a.take() + b.take() + c.take()).toBe('');
}

describe('/help and /quit (issue 26, item 6)', () => {
  it('/help lists every command, to this client alone', () => {
    expect(frame(['/help\r\n'])).toEqual({ actions: [{ kind: 'reply', text: HELP_REPLY }], close: false });
    for (const command of ['/nick NAME', '/who', '/help', '/quit']) expect(HELP_REPLY).toContain(command);
  });

  it('/quit: goodbye, then close with no reason for the others; nothing after it is framed', () => {
    const session = new ChatSession();
    expect(session.receive(Buffer.from('said\n/qu'))).toEqual({ actions: [{ kind: 'say', text: 'said' }], close: false });
    expect(session.receive(Buffer.from('it\nnever said\n'))).toEqual({ actions: [{ kind: 'reply', text: QUIT_REPLY }], close: true });
    expect(session.receive(Buffer.from('more\n'))).toEqual({ actions: [], close: false });
    // A line over the limit closes too, and says why.
    expect(new ChatSession().receive(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61)).why).toBe('line over the limit');
  });
});

describe('the slow-reader rule (OutputLimit: a hard limit at once, a soft one for SOFT_QUEUE_MS)', () => {
  const soft = SOFT_QUEUE_BYTES;
  const hard = HARD_QUEUE_BYTES;
  const HARD = `too slow: over ${hard} bytes queued`;
  const SOFT = `too slow: over ${soft} bytes queued for ${SOFT_QUEUE_MS / 1000} s`;

  it('past the hard limit: cut off at once, whenever', () => {
    const limit = new OutputLimit(queueLimits(4 * 1024 * 1024));
    expect(limit.check(0, hard, 0)).toBeUndefined();
    expect(limit.check(hard, 1, 0)).toBe(HARD);
    expect(new OutputLimit(queueLimits(4 * 1024 * 1024)).check(0, hard + 1, 0)).toBe(HARD);
  });

  it('over the soft limit: a burst the member reads within SOFT_QUEUE_MS is never cut off', () => {
    const limit = new OutputLimit(queueLimits(4 * 1024 * 1024));
    // A 70 KB paste lands in the queue at once (lab 07: before any SEND completes)...
    expect(limit.check(0, 70_000, 0)).toBeUndefined();
    expect(limit.check(70_000, 200, 1)).toBeUndefined();
    // ...and the member reads: under the soft limit again, and the clock starts over.
    expect(limit.check(1_000, 200, SOFT_QUEUE_MS - 1)).toBeUndefined();
    expect(limit.check(1_200, 70_000, SOFT_QUEUE_MS + 1)).toBeUndefined();
    expect(limit.check(71_200, 200, 2 * SOFT_QUEUE_MS)).toBeUndefined();
    // Under the soft limit just before a delivery: it went under since, so the clock starts again.
    expect(limit.check(soft, 200, 3 * SOFT_QUEUE_MS)).toBeUndefined();
    expect(limit.check(soft + 200, 200, 4 * SOFT_QUEUE_MS - 1)).toBeUndefined();
  });

  it('over the soft limit for SOFT_QUEUE_MS: cut off at the next delivery', () => {
    const limit = new OutputLimit(queueLimits(4 * 1024 * 1024));
    expect(limit.check(soft, 1, 1000)).toBeUndefined();
    expect(limit.check(soft + 1, 1, 1000 + SOFT_QUEUE_MS - 1)).toBeUndefined();
    expect(limit.check(soft + 2, 1, 1000 + SOFT_QUEUE_MS)).toBe(SOFT);
  });

  it('--max-pending lowers both limits; under the soft limit it is one limit that cuts at once', () => {
    expect(queueLimits(4 * 1024 * 1024)).toEqual({ soft, hard, softMs: SOFT_QUEUE_MS });
    expect(queueLimits(100_000)).toEqual({ soft, hard: 100_000, softMs: SOFT_QUEUE_MS });
    const limit = new OutputLimit(queueLimits(1000));
    expect(limit.check(0, 1000, 0)).toBeUndefined();
    expect(limit.check(1000, 1, 0)).toBe('too slow: over 1000 bytes queued');
  });
});

describe('chat room', () => {
  it('a local room: welcome, joins, messages to every other member, nick, who, leaves', () => {
    conversation(() => ({ room: new LocalRoom(), settle: () => {} }));
  });

  it('a relayed room (lab 02, lab 06): the same bytes, members on two holders, one delivery per holder', () => {
    conversation(() => {
      // Two holders (two children, two loops), the Room at the hub; messages queue as on a channel.
      const queue: (() => void)[] = [];
      const posted: string[] = [];
      const holders = [0, 1].map((n) => new RelayedRoom((request) => queue.push(() => hub.handle(n, request))));
      const hub = new RoomHub<number>((n, delivery) => {
        posted.push(`${n}:${'text' in delivery ? delivery.text : ''}`);
        queue.push(() => holders[n]!.receive(delivery));
      });
      // Members alternate between the holders: 1 and 3 on holder 0, 2 on holder 1.
      let next = 0;
      const room: RoomPort = {
        join: (member) => {
          const n = next++ % 2;
          return n * 1000 + holders[n]!.join(member);
        },
        act: (id, action) => holders[Math.floor(id / 1000)]!.act(id % 1000, action),
        leave: (id, why, announce) => holders[Math.floor(id / 1000)]!.leave(id % 1000, why, announce),
      };
      const settle = () => {
        while (queue.length > 0) queue.shift()!();
        // "user1: hello" went to both holders once each, never once per member.
        expect(posted.filter((line) => line.endsWith('user1: hello\n')).length).toBeLessThanOrEqual(2);
      };
      return { room, settle };
    });
  });

  it('a relayed room: a newcomer hears nothing the room said before the hub saw its join; its welcome comes first', () => {
    // One channel each way, delivered only when the test says: what lab 06's loops and lab 02's
    // children see when the hub is behind (a 1,000-member join in lab 06).
    const toHub: (() => void)[] = [];
    const toHolder: (() => void)[] = [];
    const holder = new RelayedRoom((request) => toHub.push(() => hub.handle(0, request)));
    const hub = new RoomHub<number>((_, delivery) => toHolder.push(() => holder.receive(delivery)));
    const flush = (queue: (() => void)[]) => {
      while (queue.length > 0) queue.shift()!();
    };
    const [a, b, late] = [new Ear(), new Ear(), new Ear()];
    const idA = holder.join(a);
    holder.join(b);
    flush(toHub);
    flush(toHolder);
    a.take();
    b.take();
    // a speaks; the hub answers with a delivery that is still on its way when the newcomer joins.
    send(holder, idA, 'before you came\n');
    flush(toHub);
    holder.join(late);
    flush(toHolder); // "user1: before you came", sent to the holder before the hub saw the join
    expect(late.take()).toBe('');
    expect(b.take()).toBe('user1: before you came\n');
    flush(toHub);
    flush(toHolder);
    expect(late.take()).toBe('* you are user3; here: user1, user2 (/nick NAME, /who)\n');
    expect(a.take() + b.take()).toBe('* user3 joined\n'.repeat(2));
  });

  // Issue 27 finding 5: a message cleared the others' screens, retitled their terminals, and its
  // carriage return hid the sender's name so that the line read as a server notice.
  it('control bytes in a message reach the others as visible escapes; TAB, UTF-8 and other bytes as they are', () => {
    const room = new LocalRoom();
    const [a, b] = [new Ear(), new Ear()];
    room.join(a);
    const idB = room.join(b);
    a.take();
    send(room, idB, 'hi \x1b[2J\x1b]0;owned\x07\r* user9 is now admin\n');
    expect(a.take()).toBe('user2: hi \\x1b[2J\\x1b]0;owned\\x07\\x0d* user9 is now admin\n');
    // U+009B (CSI) as UTF-8 is C2 9B; é (C3 A9), U+00A0 (C2 A0), TAB and 0xff are text or plain bytes.
    send(room, idB, '\xc2\x9b2J\x7f\x00 caf\xc3\xa9\t\xc2\xa0\xff\x9b\n');
    expect(a.take()).toBe('user2: \\u009b2J\\x7f\\x00 caf\xc3\xa9\t\xc2\xa0\xff\x9b\n');
  });

  it('names are unique whatever their case: `Alice` is taken once `alice` is; a member may change its own case', () => {
    const room = new LocalRoom();
    const [a, b] = [new Ear(), new Ear()];
    const idA = room.join(a);
    const idB = room.join(b);
    send(room, idA, '/nick alice\n');
    b.take();
    send(room, idB, '/nick Alice\n/nick USER2\n');
    expect(b.take()).toBe('* Alice is taken\n* you are now USER2\n');
    send(room, idA, '/nick Alice\n');
    expect(a.take()).toContain('* you are now Alice\n');
  });

  it('a member that leaves while a message is handed out (a slow reader cut off) hears the message first', () => {
    const room = new LocalRoom();
    const ears = [new Ear(), new Ear(), new Ear()];
    const ids: MemberId[] = [];
    // The second member is cut off by the first delivery it gets after the joins.
    let armed = false;
    ids.push(room.join(ears[0]!));
    ids.push(
      room.join({
        deliver: (bytes) => {
          ears[1]!.deliver(bytes);
          if (armed) room.leave(ids[1]!, 'too slow');
        },
        hold: () => {},
      }),
    );
    ids.push(room.join(ears[2]!));
    for (const ear of ears) ear.take();
    armed = true;
    send(room, ids[0]!, 'one\ntwo\n');
    expect(ears[1]!.take()).toBe('user1: one\n');
    expect(ears[2]!.take()).toBe('user1: one\n* user2 left (too slow)\nuser1: two\n');
    expect(ears[0]!.take()).toBe('* user2 left (too slow)\n');
    expect(room.size).toBe(2);
  });

  it('a newcomer to a big room is told ten names and how many more; a holder that goes away takes its members', () => {
    const posted: { holder: string; text: string }[] = [];
    const hub = new RoomHub<string>((holder, delivery) => 'text' in delivery && posted.push({ holder, text: delivery.text }));
    for (let i = 1; i <= 12; i++) hub.handle('a', { type: 'join', id: i });
    hub.handle('b', { type: 'join', id: 1 });
    expect(posted.at(-2)).toEqual({ holder: 'b', text: '* you are user13; here: user1, user2, user3, user4, user5, user6, user7, user8, user9, user10 and 2 more (/nick NAME, /who)\n' });
    expect(posted.at(-1)).toEqual({ holder: 'a', text: '* user13 joined\n' });
    posted.length = 0;
    hub.detach('a', 'its process ended');
    expect(posted).toHaveLength(12);
    expect(posted[0]).toEqual({ holder: 'b', text: '* user1 left (its process ended)\n' });
    expect(hub.size).toBe(1);
  });

  it('a relayed room: flow control: a flooding member is held past its window and read again once acknowledged; while a holder is behind, no acknowledgement goes out', () => {
    // A channel per direction and per holder, delivered only when the test says: the sender on
    // holder 0, the listener on holder 1.
    const toHub: (() => void)[] = [];
    const toHolder: (() => void)[][] = [[], []];
    const holders = [0, 1].map((n) => new RelayedRoom((request) => toHub.push(() => hub.handle(n, request))));
    const hub = new RoomHub<number>((n, delivery) => toHolder[n]!.push(() => holders[n]!.receive(delivery)));
    const flush = (queue: (() => void)[]) => {
      while (queue.length > 0) queue.shift()!();
    };
    const everything = () => {
      while (toHub.length + toHolder[0]!.length + toHolder[1]!.length > 0) [toHub, ...toHolder].forEach(flush);
    };
    const [sender, listener] = [new Ear(), new Ear()];
    const id = holders[0]!.join(sender);
    holders[1]!.join(listener);
    everything();
    const line = 'x'.repeat(100);
    /** Lines said until the sender is held (at most `limit`). */
    const flood = (limit = 10_000) => {
      let lines = 0;
      while (sender.holds.at(-1) !== true && lines < limit) {
        holders[0]!.act(id, { kind: 'say', text: line });
        lines++;
      }
      return lines;
    };
    // Held once its window is spent: 64 KiB counted at 164 bytes a line (the text and its envelope).
    expect(flood()).toBe(Math.floor(RELAY_WINDOW_BYTES / 164) + 1);
    // The hub handles the lines and acknowledges them; the listener's holder takes its deliveries.
    everything();
    expect(sender.holds).toEqual([true, false]);
    expect(listener.heard.split('\n').filter((heard) => heard === `user1: ${line}`)).toHaveLength(400);

    // Now the listener's holder falls behind: nothing reaches it. Acknowledgements stop once the
    // hub has posted it more than HOLDER_WINDOW_BYTES, so the sender is held, and stays held.
    let rounds = 0;
    for (; rounds < 20; rounds++) {
      flood();
      flush(toHub);
      flush(toHolder[0]!);
      if (sender.holds.at(-1) === true) break;
    }
    expect(sender.holds.at(-1)).toBe(true);
    const waiting = toHolder[1]!.length;
    // Never more than its window and the senders' windows on the way to a holder.
    expect(waiting * 172).toBeLessThan(HOLDER_WINDOW_BYTES + 2 * RELAY_WINDOW_BYTES);
    flush(toHub);
    flush(toHolder[0]!);
    expect(sender.holds.at(-1), 'still held: the hub holds its acknowledgements').toBe(true);
    // The holder catches up and says so: every acknowledgement goes out, and the sender is read again.
    everything();
    expect(sender.holds.at(-1)).toBe(false);
  });
});
