/**
 * Runs one of the C load generators (c-echo-client, c-chat-client) to its end: its stdout whole,
 * the last lines of its stderr, and the window callbacks fired as the tool prints
 * "TOOL: window open" and "TOOL: window closed" (so a caller samples the server over that window).
 * SIGKILLed past `deadlineMs`; rejects when it cannot start, is killed, or exits with a status
 * other than 0 or 1 (1: it ran to the end and found errors, which its report counts).
 */

import { spawn } from 'node:child_process';

export interface WindowCallbacks {
  readonly onWindowStart?: () => void;
  readonly onWindowEnd?: () => void;
}

/** Command-line flags from their values: `{ port: 80, hold: true, drain: undefined }` is `--port 80 --hold`. */
export const flags = (values: Readonly<Record<string, string | number | boolean | undefined>>): string[] =>
  Object.entries(values).flatMap(([name, value]) => (value === undefined || value === false ? [] : value === true ? [`--${name}`] : [`--${name}`, String(value)]));

export function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' / ') || '(no stderr)';
}

export async function runCTool(tool: string, file: string, argv: readonly string[], deadlineMs: number, window: WindowCallbacks): Promise<{ code: number; stdout: string }> {
  const { code, signal, stdout, stderr } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let stderrLine = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const lines = (stderrLine + d.toString()).split('\n');
      stderrLine = lines.pop() ?? '';
      for (const line of lines) {
        if (line === `${tool}: window open`) window.onWindowStart?.();
        if (line === `${tool}: window closed`) window.onWindowEnd?.();
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${file}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  if (signal !== null) throw new Error(`${tool} was killed by ${signal}${signal === 'SIGKILL' ? ` (no exit within ${deadlineMs} ms?)` : ''}: ${lastLines(stderr)}`);
  if (code !== 0 && code !== 1) throw new Error(`${tool} exited with status ${code}: ${lastLines(stderr)}`);
  return { code, stdout };
}
