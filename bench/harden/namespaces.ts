/**
 * Capabilities and network namespaces, each in a network namespace this run makes and removes
 * (so port 80 here is never the host's port 80):
 *
 *   port 80 without root: the lab runs as nobody with exactly one capability, CAP_NET_BIND_SERVICE,
 *     made ambient by setpriv so it survives the exec into node (setcap on the node binary would
 *     give it to every script and put Node into secure-exec mode). Without it: the EACCES line.
 *     The namespace's net.ipv4.ip_unprivileged_port_start (per namespace, 1024 by default) is shown.
 *   a lab in its own namespace, reached from this one through a veth pair: echoes across it, and
 *     the echo probe's time; `tc netem` adds delay on that link where the kernel has sch_netem,
 *     and where it does not, one line says so.
 *
 * Needs root (CAP_SYS_ADMIN for ip netns, CAP_NET_ADMIN for the veth pair); `namespacesUnavailable`
 * says in one line why not.
 */

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { labEntry, repoRoot, startLabThrough } from '../../harness/launch.js';
import { probe } from '../../shared/probe.js';
import { EchoLoop } from './pingpong.js';

/** nobody: a user with no privileges at all. */
const NOBODY = '65534';
/** Added on the veth link where netem exists: far above loopback, easy to see in a probe's time. */
const NETEM_DELAY_MS = 20;

export interface PortResult {
  /** The lab's listening line, or its one-line refusal. */
  readonly line: string;
  readonly listened: boolean;
  /** The lab's effective capabilities (CapEff, hex), when it listened. */
  readonly capEff?: string;
  /** The echo probe from inside the namespace, when it listened. */
  readonly probe?: string;
}

export interface CapabilityResult {
  readonly unprivilegedPortStart: number;
  readonly withCapability: PortResult;
  readonly without: PortResult;
}

export interface VethResult {
  readonly labAddress: string;
  readonly roundTrips: number;
  readonly probeMs: number;
  readonly probeOk: boolean;
  /** With netem's delay on the lab's end of the link, or why it was not added. */
  readonly netem: { readonly delayMs: number; readonly probeMs: number } | { readonly skipped: string };
}

const run = (command: string, args: string[]) => execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

/** Why this run cannot make namespaces, or undefined. */
export function namespacesUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: ip netns and a veth pair need CAP_SYS_ADMIN and CAP_NET_ADMIN (run as root, or in a VM)';
  for (const tool of [['ip', '-V'], ['setpriv', '--version']] as const) {
    try {
      run(tool[0], [tool[1]]);
    } catch {
      return `${tool[0]} is not installed (apt-get install ${tool[0] === 'ip' ? 'iproute2' : 'util-linux'})`;
    }
  }
  return undefined;
}

/** A namespace of this run's own, removed by `close` (with the veth pair, which dies with it). */
export function makeNamespace(tag: string): { name: string; exec: string[]; close: () => void } {
  const name = `iolab-${tag}-${process.pid}`;
  run('ip', ['netns', 'add', name]);
  run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return { name, exec: ['ip', 'netns', 'exec', name], close: () => void run('ip', ['netns', 'del', name]) };
}

/** Starts lab `id` on port 80 inside `ns` as nobody, with `caps` inheritable and ambient; its line, and the process if it listened. */
function startOnPort80(exec: readonly string[], id: string, caps: string): Promise<{ line: string; pid?: number; stop: () => Promise<void> }> {
  const child = spawn(exec[0]!, [...exec.slice(1), 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', `--inh-caps=${caps}`, `--ambient-caps=${caps}`, process.execPath, labEntry(id), '--port', '80', '--quiet'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: repoRoot,
  });
  let out = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ line: `no listening line within 20 s: ${out.trim()}`, stop }), 20_000);
    const seen = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => /listening on /.test(l));
      if (line) {
        clearTimeout(timer);
        resolve({ line: line.replace(/\[\S+\] /, ''), pid: child.pid!, stop });
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then(() => {
      clearTimeout(timer);
      resolve({ line: out.trim().split('\n').at(-1) ?? `exited with nothing said`, stop });
    });
  });
}

export async function portBelow1024(id: string): Promise<CapabilityResult> {
  const ns = makeNamespace('port80');
  try {
    const unprivilegedPortStart = Number(run(ns.exec[0]!, [...ns.exec.slice(1), 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start']).trim());
    const refused = await startOnPort80(ns.exec, id, '-all');
    await refused.stop();
    const without: PortResult = { line: refused.line, listened: refused.pid !== undefined };
    const granted = await startOnPort80(ns.exec, id, '+net_bind_service');
    let withCapability: PortResult = { line: granted.line, listened: false };
    if (granted.pid !== undefined) {
      const capEff = /^CapEff:\s*(\S+)/m.exec(readFileSync(`/proc/${granted.pid}/status`, 'utf8'))?.[1];
      let probed: string;
      try {
        probed = run(ns.exec[0]!, [...ns.exec.slice(1), process.execPath, path.join(repoRoot, 'dist', 'labs', 'probe.js'), '--port', '80', '--kind', 'echo', '--deadline-ms', '5000']).trim();
      } catch (error) {
        probed = String((error as { stdout?: string }).stdout ?? error).trim();
      }
      withCapability = { line: granted.line, listened: true, ...(capEff ? { capEff } : {}), probe: probed };
    }
    await granted.stop();
    return { unprivilegedPortStart, withCapability, without };
  } finally {
    ns.close();
  }
}

/** A /30 of its own per run, so two runs at once do not share addresses. */
function subnet(): { host: string; lab: string } {
  const third = process.pid % 250;
  return { host: `10.231.${third}.1`, lab: `10.231.${third}.2` };
}

export async function acrossVeth(id: string, roundTrips: number): Promise<VethResult> {
  const ns = makeNamespace('veth');
  const tag = String(process.pid % 1_000_000);
  const [outside, inside] = [`ivh${tag}`, `ivn${tag}`];
  const { host, lab: labAddress } = subnet();
  try {
    run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
    run('ip', ['link', 'set', inside, 'netns', ns.name]);
    run('ip', ['addr', 'add', `${host}/30`, 'dev', outside]);
    run('ip', ['link', 'set', outside, 'up']);
    run('ip', ['-n', ns.name, 'addr', 'add', `${labAddress}/30`, 'dev', inside]);
    run('ip', ['-n', ns.name, 'link', 'set', inside, 'up']);
    const lab = await startLabThrough(ns.exec, id, ['--host', labAddress, '--quiet']);
    try {
      const load = await EchoLoop.start(lab.port, 4, labAddress);
      await load.until(roundTrips, 120_000);
      await load.stop();
      const target = { host: labAddress, port: lab.port, deadlineMs: 5000 };
      const plain = await probe('echo', target);
      let netem: VethResult['netem'];
      try {
        run(ns.exec[0]!, [...ns.exec.slice(1), 'tc', 'qdisc', 'add', 'dev', inside, 'root', 'netem', 'delay', `${NETEM_DELAY_MS}ms`]);
        netem = { delayMs: NETEM_DELAY_MS, probeMs: (await probe('echo', target)).ms };
      } catch (error) {
        const said = String((error as { stderr?: string }).stderr ?? error).trim().split('\n')[0] ?? '';
        netem = { skipped: /unknown|No such file/.test(said) ? `not available here (tc said "${said}": this kernel has no sch_netem), so the link ran without added delay` : said };
      }
      return { labAddress, roundTrips: load.roundTrips, probeMs: plain.ms, probeOk: plain.ok, netem };
    } finally {
      await lab.stop('SIGTERM');
    }
  } finally {
    ns.close();
  }
}
