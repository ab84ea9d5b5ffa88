/**
 * The C chat load generator (bench/load/c-chat-client.c) from TypeScript: build it, run it, and
 * hand back its JSON report checked field by field, with the callbacks that mark its measured
 * window (so the server's CPU is sampled over exactly that window). Rejects, never resolves with
 * a doubtful figure, when the binary cannot be built, exits abnormally, or prints another shape.
 * A run that found errors (a lost or reordered message, a reading member closed) resolves: the
 * report shows its error counts.
 */

import { buildCChatClient, C_CHAT_CLIENT_BINARY } from '../reference/build.js';
import { flags, runCTool, type WindowCallbacks } from './c-tool.js';

export interface CChatOptions extends WindowCallbacks {
  readonly port: number;
  readonly members: number;
  readonly senders: number;
  readonly stuck: number;
  readonly size: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
}

/** As documented in the header of c-chat-client.c. */
export interface CChatResult {
  readonly tool: 'c-chat-client';
  readonly version: 1;
  readonly members: number;
  readonly senders: number;
  readonly stuck: number;
  readonly size: number;
  readonly joined: number;
  /** From the first connect until every member had its welcome and every join was announced. */
  readonly joinS: number;
  readonly windowS: number;
  readonly messages: number;
  readonly deliveries: number;
  readonly deliveriesPerSec: number;
  readonly latencyUs: { readonly count: number; readonly p50: number; readonly p99: number; readonly max: number };
  readonly cpu: { readonly userS: number; readonly sysS: number; readonly fraction: number };
  readonly stuckClosed: number;
  readonly notices: number;
  readonly errors: { readonly connect: number; readonly socket: number; readonly order: number; readonly missing: number; readonly total: number };
  readonly firstError: string;
}

/** Joining a thousand members one at a time takes a while on a busy machine (lab 02: a process each). */
const JOIN_ALLOWANCE_MS = 120_000;

export async function runCChatClient(options: CChatOptions): Promise<CChatResult> {
  const unavailable = buildCChatClient();
  if (unavailable !== undefined) throw new Error(unavailable);
  const args = flags({ port: options.port, members: options.members, senders: options.senders, stuck: options.stuck, size: options.size, warmup: options.warmupSeconds, seconds: options.seconds });
  const deadlineMs = (options.warmupSeconds + options.seconds) * 1000 + JOIN_ALLOWANCE_MS;
  const { stdout } = await runCTool('c-chat-client', C_CHAT_CLIENT_BINARY, args, deadlineMs, options);
  return parseChatResult(stdout);
}

export function parseChatResult(stdout: string): CChatResult {
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as CChatResult;
  if (result.tool !== 'c-chat-client' || result.version !== 1) throw new Error(`c-chat-client printed something else: ${stdout.slice(0, 200)}`);
  if (typeof result.errors?.total !== 'number') throw new Error('c-chat-client report has no error counts');
  if (result.joined < result.members + result.stuck) throw new Error(`only ${result.joined} of ${result.members + result.stuck} members could join (${result.firstError})`);
  for (const field of ['joinS', 'windowS', 'messages', 'deliveries', 'deliveriesPerSec'] as const) {
    if (typeof result[field] !== 'number') throw new Error(`c-chat-client report: ${field} is not a number`);
  }
  return result;
}
