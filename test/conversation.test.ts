/**
 * The connection contract's own promises, with no socket: the chat member (ChatConversation)
 * through recording carriers, and the by-hand kit's outbox (shared/kit/outbox.ts) with bytes.
 */

import { describe, expect, it } from 'vitest';
import { CUT_OFF_NOTICE, MAX_LINE_BYTES, SHUTDOWN_NOTICE } from '../shared/chat.js';
import { LAST_WORDS_MS, type ProtocolConfig } from '../shared/conversation.js';
import { Outbox } from '../shared/kit/outbox.js';
import { createLogger } from '../shared/log.js';
import { openConversation } from '../shared/protocols.js';
import { LocalRoom } from '../shared/room.js';
import { RecordingCarrier } from './helpers/conversation.js';

const CHAT: ProtocolConfig = { protocol: 'chat', maxHeaderBytes: 8192, maxBodyBytes: 1024 };
const log = createLogger('test', true);

function member(room: LocalRoom, maxPendingBytes = 1024 * 1024) {
  const carrier = new RecordingCarrier();
  const conversation = openConversation(carrier, { protocol: CHAT, room, maxPendingBytes, log, peer: 'test:1' });
  conversation.start();
  return { carrier, conversation };
}

describe('chat through the contract', () => {
  it('a member hears its welcome and the others hear its lines; it never asks the lab which protocol', () => {
    const room = new LocalRoom();
    const a = member(room);
    const b = member(room);
    expect(a.carrier.sent).toMatch(/^\* you are user1; nobody else is here/);
    a.conversation.receive(Buffer.from('hello\n'));
    expect(b.carrier.sent.endsWith('user1: hello\n')).toBe(true);
    expect(a.conversation.waitsForRequests).toBe(false);
    expect(a.conversation.requestArriving).toBe(0);
  });

  it('a line over the limit: its error line, then close, and the others hear it left', () => {
    const room = new LocalRoom();
    const a = member(room);
    const b = member(room);
    a.conversation.receive(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61));
    expect(a.carrier.sent.endsWith(`* line over ${MAX_LINE_BYTES} bytes: closing the connection\n`)).toBe(true);
    expect(a.carrier.closes).toBe(1);
    expect(a.carrier.reason).toBeUndefined();
    expect(b.carrier.sent.endsWith('* user1 left (line over the limit)\n')).toBe(true);
  });

  it('a member whose queue would pass its bound is cut off: a notice, close with the reason, out of the room', () => {
    const room = new LocalRoom();
    const slow = member(room, 1000);
    const talker = member(room);
    slow.carrier.pending = 990; // the lab's queue for it is nearly full
    talker.conversation.receive(Buffer.from('more than ten bytes\n'));
    expect(slow.carrier.sent.endsWith(CUT_OFF_NOTICE)).toBe(true);
    expect(slow.carrier.reason).toBe('too slow: over 1000 bytes queued');
    expect(talker.carrier.sent.endsWith('* user1 left (too slow)\n')).toBe(true);
    expect(room.size).toBe(1);
    expect(LAST_WORDS_MS).toBeGreaterThan(0);
  });

  it('shutdown: goodbye to the member, not a word to the others, then close; release leaves once', () => {
    const room = new LocalRoom();
    const a = member(room);
    const b = member(room);
    const heard = b.carrier.sent;
    a.conversation.stop();
    expect(a.carrier.sent.endsWith(SHUTDOWN_NOTICE)).toBe(true);
    expect(a.carrier.closes).toBe(1);
    expect(b.carrier.sent).toBe(heard);
    a.conversation.release();
    b.conversation.end();
    expect(b.carrier.closes).toBe(1);
    expect(room.size).toBe(0);
  });
});

describe('the by-hand outbox', () => {
  it('keeps a view pushed into an empty outbox only until the lab has sent what it could, then copies the rest', () => {
    const outbox = new Outbox();
    const readBuffer = Buffer.from('abcdef');
    outbox.push(readBuffer.subarray(0, 4), false);
    outbox.offset = 2; // the lab wrote two bytes at once
    outbox.keep();
    readBuffer.write('XXXX'); // the next read overwrites the buffer
    expect(Buffer.from(outbox.items[0] as Uint8Array).toString()).toBe('abcd');
    expect(outbox.pending).toBe(4);
  });

  it('copies bytes behind waiting ones at once, keeps shared ones as they are, and hands them out in order', () => {
    const outbox = new Outbox();
    const shared = Buffer.from('room line\n');
    const borrowed = Buffer.from('reply');
    outbox.push(shared, true);
    outbox.push(borrowed, false);
    borrowed.write('XXXXX');
    expect(outbox.items[0]).toBe(shared);
    const into = Buffer.alloc(12);
    expect(outbox.takeBytes(into)).toBe(12);
    expect(into.toString()).toBe('room line\nre');
    expect(Buffer.from(outbox.items[0] as Uint8Array).toString()).toBe('ply');
    expect(outbox.pending).toBe(15); // until the kernel has taken them (lab 07: its SEND completes)
  });

  it('a file waits as a request: no descriptor until its turn; drop forgets everything', () => {
    const outbox = new Outbox();
    outbox.push(Buffer.from('head'), false);
    outbox.pushFile({ kind: 'file', head: false, method: 'GET', target: '/a', segments: ['a'], directory: false, refused: undefined, range: undefined, connection: undefined });
    expect(outbox.files).toBe(1);
    const into = Buffer.alloc(64);
    expect(outbox.takeBytes(into)).toBe(4); // bytes stop at the file
    outbox.drop();
    expect([outbox.items.length, outbox.pending, outbox.files, outbox.empty]).toEqual([0, 0, 0, true]);
  });
});
