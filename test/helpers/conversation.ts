/**
 * The connection contract (shared/conversation.ts) driven the way a lab drives it, for the
 * byte-level tests: a carrier that records every action, and a stepper that feeds one call at a
 * time and returns that call's actions as a step (its jobs, and whether it closed). No sockets.
 */

import type { Carrier, FileJob, Job, ProtocolConfig } from '../../shared/conversation.js';
import { createLogger } from '../../shared/log.js';
import { openConversation } from '../../shared/protocols.js';
import { LocalRoom } from '../../shared/room.js';

/** What one call handed the carrier: the jobs to answer and the files to send, in order, and whether it closed. */
export interface Step {
  readonly jobs: (Job | FileJob)[];
  readonly close: boolean;
}

export class RecordingCarrier implements Carrier {
  jobs: (Job | FileJob)[] = [];
  /** Bytes sent as they are (not worked out), as latin1. */
  sent = '';
  closes = 0;
  reason: string | undefined;
  pending = 0;

  send(bytes: Uint8Array): void {
    this.sent += Buffer.from(bytes).toString('latin1');
  }
  answer(job: Job): void {
    this.jobs.push(job);
  }
  sendFile(job: FileJob): void {
    this.jobs.push(job);
  }
  close(reason?: string): void {
    this.closes++;
    this.reason = reason;
  }
  /** Whether the conversation last asked that the client be read no more. */
  readingHeld = false;
  holdReading(held: boolean): void {
    this.readingHeld = held;
  }

  /** The jobs since the last step, and whether close was called meanwhile. */
  step(closesBefore: number): Step {
    const jobs = this.jobs;
    this.jobs = [];
    return { jobs, close: this.closes > closesBefore };
  }
}

/** One connection's conversation for `config`, with one call per step. */
export function createSession(config: ProtocolConfig) {
  const carrier = new RecordingCarrier();
  const conversation = openConversation(carrier, {
    protocol: config,
    room: new LocalRoom(),
    maxPendingBytes: 1024 * 1024,
    log: createLogger('test', true),
    peer: 'test:1',
  });
  conversation.start();
  const call = (act: () => void): Step => {
    const before = carrier.closes;
    act();
    return carrier.step(before);
  };
  return {
    carrier,
    conversation,
    receive: (chunk: Buffer): Step => call(() => conversation.receive(chunk)),
    end: (): Step => call(() => conversation.end()),
    /** The shutdown: true when the conversation closed at once (it was between requests). */
    stopAfterCurrent: (): boolean => call(() => conversation.stop()).close,
    get requestArriving(): number {
      return conversation.requestArriving;
    },
    close: () => conversation.release(),
  };
}

export type Session = ReturnType<typeof createSession>;
