/**
 * The command line every lab shares: flags, validation, the listening line, and signals.
 *
 * A lab's `main.ts` only names its lab and calls `runLab`, so the flags, their defaults and the
 * shutdown behaviour are the same in every lab by construction.
 */

import type { Argv as Parser, Options } from 'yargs';
import { hideBin, yargs } from './yargs.js';
import { exitOnUserError, UserError } from './errors.js';
import type { Lab, LabInfo, RunningServer, ServerOptions } from './lab.js';
import { openRoot } from './file-open.js';
import { createLogger } from './log.js';
import type { ProtocolName } from './conversation.js';
import { openNotifier, type Notifier } from './notify.js';
import { allowList, DENIES, type Deny, installSandbox, sandboxNote } from './sandbox.js';
import { workSpec } from './work.js';

const MiB = 1024 * 1024;

/** The defaults, each with its reason. Tests and benchmarks override them; users rarely need to. */
export const DEFAULTS = {
  host: '127.0.0.1', // an echo service reflects whatever it is sent: never expose one by accident
  port: 8080,
  backlog: 511, // what Node's net.Server passes to listen(2), so every lab starts from the same queue
  protocol: 'echo' as ProtocolName,
  workUs: 0,
  shutdownTimeout: 5, // s: long enough for an in-flight echo, short enough for Ctrl-C to feel prompt
  maxConns: 1000, // far beyond a classroom, far below the default fd limit
  maxPending: 4 * MiB, // bytes: a few reads' worth per client; the server stops reading long before
  idleTimeout: 300, // s: an nc session left alone while you read the README survives it
  maxLifetime: 3600, // s: bounds a client that trickles a byte just often enough to never be idle
  headerTimeout: 10, // s: a request head is a few hundred bytes; slower than this is an attack
  maxHeaderBytes: 16 * 1024, // Node's own http default
  maxBodyBytes: 1 * MiB, // each request body is held whole to be echoed: keep it small
} as const;

const commonOptions = {
  host: { type: 'string', default: DEFAULTS.host, describe: 'address to bind' },
  port: { type: 'number', default: DEFAULTS.port, describe: 'TCP port (0 picks a free one)' },
  backlog: { type: 'number', default: DEFAULTS.backlog, describe: 'listen(2) backlog; the kernel caps it at net.core.somaxconn' },
  // Its description is made from the lab's own protocols (PROTOCOL_HELP), in parseArgs.
  protocol: { type: 'string', default: DEFAULTS.protocol, describe: '' },
  'work-us': { type: 'number', default: DEFAULTS.workUs, describe: 'CPU work per request (http) or per received chunk (echo), in µs' },
  quiet: { type: 'boolean', default: false, describe: 'do not log each client connect and disconnect' },
  'shutdown-timeout': { type: 'number', default: DEFAULTS.shutdownTimeout, describe: 'seconds open connections get to finish after SIGINT/SIGTERM' },
  'max-conns': { type: 'number', default: DEFAULTS.maxConns, describe: 'most clients served at once; more are closed on accept' },
  'max-pending': { type: 'number', default: DEFAULTS.maxPending, describe: 'bytes of unsent replies one client may have before it is closed' },
  'idle-timeout': { type: 'number', default: DEFAULTS.idleTimeout, describe: 'seconds without a byte moving before a client is closed' },
  'max-lifetime': { type: 'number', default: DEFAULTS.maxLifetime, describe: 'seconds after which any client is closed' },
  'header-timeout': { type: 'number', default: DEFAULTS.headerTimeout, describe: 'http: seconds a whole request (head and body) may take to arrive, from its first byte' },
  'max-header-bytes': { type: 'number', default: DEFAULTS.maxHeaderBytes, describe: 'http: largest request head (431 beyond)' },
  'max-body-bytes': { type: 'number', default: DEFAULTS.maxBodyBytes, describe: 'http: largest request body (413 beyond)' },
  // yargs reads --no-nodelay as nodelay = false.
  nodelay: { type: 'boolean', default: true, describe: 'TCP_NODELAY on every client; --no-nodelay leaves Nagle\'s algorithm on (for make nagle)' },
  'split-replies': { type: 'boolean', default: false, describe: 'EXPERIMENT (make nagle), off by default: http replies go out in two writes, head then body' },
  root: { type: 'string', describe: 'files: the directory served (nothing outside it ever is)' },
  sandbox: { type: 'boolean', default: false, describe: 'once listening, allow only the system calls this model needs (seccomp, every thread; make SANDBOX=1)' },
  'sandbox-deny': { type: 'string', default: 'eperm', describe: 'with --sandbox, a call outside the list: eperm (it fails) or kill (the process dies; make SANDBOX=kill)' },
} satisfies Record<string, Options>;

type Argv = Record<string, unknown>;

/** The part of yargs's `getOptions()` that `strictly` reads: option names by type, and defaults. */
interface DeclaredOptions {
  readonly string: readonly string[];
  readonly number: readonly string[];
  readonly array: readonly string[];
  readonly default: Readonly<Record<string, unknown>>;
}

/** Extra flags a lab adds to the common ones, and how they reach its start function. */
export interface LabFlags<Extra extends object> {
  readonly options: Record<string, Options>;
  /** A problem with the lab's own flags, as one line; `args` is what was typed (see `given`). */
  check?(argv: Argv, args: readonly string[]): string | undefined;
  pick(argv: Argv): Extra;
  /**
   * This run's variant in a few words, from the lab's own options as picked (lab 05: "epoll,
   * edge-triggered"): the listening line says it after the model, so the first line a user sees
   * names what answers. Derive it from the options, not from a list of known variants, so a new
   * flag value shows up in it by itself.
   */
  mode?(options: Extra): string;
  /**
   * Lines this run says before it starts: a flag that demonstrates a bug on purpose says what
   * will go wrong (lab 05's --no-drain, lab 07's --reuse-early), beside the flag it explains.
   */
  notes?(options: Extra): string[];
}

export function runLab<Extra extends object>(lab: Lab<Extra>, flags?: LabFlags<Extra>): void {
  main(lab, flags).catch(exitOnUserError(lab.info.id));
}

/**
 * What every command line in the project shares: unknown flags are errors, a flag that takes a
 * value must be given one, and only once (see `valueProblem`), and every parse error becomes a
 * UserError (reported by `exitOnUserError` as one line, exit status 2). Call it once the parser
 * has its options: those it has then are the ones checked.
 */
export function strictly<T>(parser: Parser<T>, args: readonly string[] = hideBin(process.argv)): Parser<T> {
  // getOptions is yargs's own record of the options declared so far (its types leave it out).
  const { string, number, array, default: defaults } = (parser as unknown as { getOptions(): DeclaredOptions }).getOptions();
  // A list option (the experiments' `--connections 1,2 --connections 300`) gathers its repeats on
  // purpose, and requiresArg would cut it to one value: only single-valued flags are checked.
  const valued = [...string, ...number].filter((name) => !array.includes(name));
  return (
    parser
      .strict()
      .version(false)
      // Left to itself yargs reads `--port` with nothing after it as "not given" and binds the
      // default, 8080, without a word; with requiresArg it refuses (worded by `missingValue`).
      .requiresArg(valued)
      // Before validation, so these come ahead of the range checks, whose "got '2'" would not say
      // that the real problem was a second --port.
      .middleware((argv) => {
        const problem = valueProblem(argv, args, valued, defaults);
        if (problem) throw new UserError(problem);
      }, true)
      .wrap(Math.min(110, process.stdout.columns || 110))
      .fail((message, error) => {
        if (error instanceof UserError) throw error;
        throw new UserError((message && (unknownArguments(message, args) ?? missingValue(message, defaults))) ?? message ?? String(error));
      })
  );
}

/**
 * "--port needs a value (leave it out for the default, 8080)": yargs's "Not enough arguments
 * following: port" in the project's wording. Undefined for any other message.
 */
export function missingValue(message: string, defaults: Readonly<Record<string, unknown>>): string | undefined {
  const name = /^Not enough arguments following: (.+)$/.exec(message)?.[1];
  if (name === undefined) return undefined;
  const fallback = defaults[name];
  return `${flagName(name)} needs a value${fallback === undefined ? '' : ` (leave it out for the default, ${String(fallback)})`}`;
}

/**
 * A flag that takes a value given as `--port=` (which yargs reads as 0, or as an empty string),
 * or given more than once. yargs gathers the values of a repeated flag into an array, so neither
 * is "the" value: rather than keep the last one quietly (an ARGS="--port 2" on top of PORT=1 is
 * easy to type and hard to spot), it is an error that shows both. A switch (--quiet,
 * --no-nodelay) given twice stays yargs's "the last one wins": it holds no value to lose.
 * List options (`array: true`) are not in `valued` and may repeat.
 */
export function valueProblem(argv: Argv, args: readonly string[], valued: readonly string[], defaults: Readonly<Record<string, unknown>>): string | undefined {
  for (const name of valued) {
    const typed = typedValues(args, name);
    if (typed.some((value) => value === '')) return missingValue(`Not enough arguments following: ${name}`, defaults);
    if (Array.isArray(argv[name])) {
      const shown = typed.length > 1 ? typed.map((value) => `'${value}'`) : (argv[name] as unknown[]).map(String);
      return `${flagName(name)} given ${shown.length === 2 ? 'twice' : `${shown.length} times`} (${shown.join(', ')}): give it once`;
    }
  }
  return undefined;
}

const flagName = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

/** What followed each `--name` or `--name=` in `args`, in order (up to a `--`, after which nothing is a flag). */
function typedValues(args: readonly string[], name: string): (string | undefined)[] {
  const values: (string | undefined)[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg === `--${name}`) values.push(args[i + 1]);
    else if (arg.startsWith(`--${name}=`)) values.push(arg.slice(name.length + 3));
  }
  return values;
}

/**
 * yargs's "Unknown arguments: bogus, x" in the project's wording, each as it was typed in `args`
 * (yargs drops the dashes, and reads `--no-bogus` as `bogus`): "unknown flags --bogus, -x (--help
 * lists every flag)". Undefined for any other message.
 */
export function unknownArguments(message: string, args: readonly string[]): string | undefined {
  const listed = /^Unknown arguments?: (.+)$/s.exec(message)?.[1]?.split(', ');
  if (!listed) return undefined;
  const camel = (name: string) => name.replace(/-+([^-])/g, (_, c: string) => c.toUpperCase());
  const typedAs = (name: string): string => {
    for (const arg of args) {
      if (arg === '--') break;
      const flag = /^(-{1,2})([^=]+)/.exec(arg);
      if (!flag) {
        if (arg === name) return `'${arg}'`;
        continue;
      }
      const [, dashes, typed] = flag as unknown as [string, string, string];
      if ([typed, typed.replace(/^no-/, '')].some((candidate) => candidate === name || camel(candidate) === name)) return `${dashes}${typed}`;
      if (dashes === '-' && name.length === 1 && typed.includes(name)) return `-${name}`;
    }
    return name.length === 1 ? `-${name}` : `--${name}`;
  };
  // yargs lists `--a-b` twice, as typed and camel-cased (aB): both are typed as the same flag.
  const typed = [...new Set(listed.map(typedAs))];
  const flags = typed.filter((arg) => arg.startsWith('-'));
  const words = typed.filter((arg) => !arg.startsWith('-'));
  const parts = [
    flags.length ? `unknown flag${flags.length === 1 ? '' : 's'} ${flags.join(', ')}` : undefined,
    words.length ? `unexpected argument${words.length === 1 ? '' : 's'} ${words.join(', ')}` : undefined,
  ];
  return `${parts.filter(Boolean).join('; ')} (--help lists every flag)`;
}

async function main<Extra extends object>(lab: Lab<Extra>, flags?: LabFlags<Extra>): Promise<void> {
  const argv = parseArgs(lab.info, hideBin(process.argv), flags);
  const log = createLogger(lab.info.id, argv.quiet as boolean);
  const extra = flags?.pick(argv) ?? ({} as Extra);
  const options = { ...toServerOptions(argv, log), ...extra };
  for (const note of flags?.notes?.(extra) ?? []) log.info(note);
  // Signal handlers go in before the listening line is printed: whoever reads that line may
  // signal at once, and a signal that beats its handler kills the process uncleanly.
  // systemd's socket (shared/notify.ts), opened before the sandbox, which leaves it sendto alone.
  const notifier = await openNotifier();
  const started = lab.start(options);
  handleSignals(started, options, notifier);
  const server = await started;
  // The filter goes on once the lab listens (what start-up needs, it no longer does), and before
  // the listening line: whoever reads that line finds every thread filtered.
  const allowed = [...allowList(lab.info, options.protocol.protocol), ...(notifier ? ['sendto'] : [])];
  const sandbox = options.sandbox ? sandboxNote(await installSandbox(allowed, argv['sandbox-deny'] as Deny)) : undefined;
  const mode = [flags?.mode?.(extra), sandbox].filter(Boolean).join('; ');
  log.info(listeningLine(server.address, lab.info.model, mode || undefined, process.pid));
  notifier?.send(`READY=1\nMAINPID=${process.pid}`);
  notifier?.startWatchdog();
}

/**
 * `listening on 127.0.0.1:8080 (model: ...; this run: ...; pid N)`: the first line of every lab,
 * which the READMEs quote (test/readme-start-lines.test.ts keeps them equal) and harnesses wait for.
 */
export function listeningLine(address: RunningServer['address'], model: string, mode: string | undefined, pid: number): string {
  return `listening on ${address.host}:${address.port} (model: ${model}${mode ? `; this run: ${mode}` : ''}; pid ${pid})`;
}

/** What each protocol is, for `--help`: a lab lists only the protocols it serves (labs/index.ts). */
const PROTOCOL_HELP: Readonly<Record<ProtocolName, string>> = {
  echo: 'echo: RFC 862 bytes',
  http: 'http: HTTP/1.1 echo for load tools',
  chat: 'chat: a line-based chat room',
  files: 'files: static files from --root',
};

export function parseArgs(info: LabInfo, args: string[], flags?: LabFlags<object>): Argv {
  // A lab whose only queue is the kernel's never holds a second client, so a connection cap has
  // nothing to cap there: the flag is not offered, and giving it is an error that says why.
  const { 'max-conns': maxConns, ...others } = commonOptions;
  const capApplies = !info.traits.kernelQueueOnly;
  if (!capApplies && args.some((arg) => /^--max-?conns(=|$)/i.test(arg))) {
    throw new UserError(`--max-conns does not apply to ${info.id}: it serves one client at a time, the rest wait in the kernel accept queue (size it with --backlog)`);
  }
  const withCap = capApplies ? { ...others, 'max-conns': { ...maxConns, default: info.defaults.maxConns ?? DEFAULTS.maxConns } } : others;
  // The protocols are the lab's own (labs/index.ts): another is refused in the project's wording.
  const protocols = info.protocols.join(', ').replace(/, ([^,]*)$/, ' or $1');
  const described = info.protocols.map((protocol) => PROTOCOL_HELP[protocol]).join('; ');
  const serves = { ...withCap, protocol: { ...others.protocol, describe: `${protocols}. ${described}` } };
  // --root is for files alone: a lab without it keeps the flag (to refuse it in one line) but not in --help.
  const options = info.protocols.includes('files') ? serves : { ...serves, root: { ...others.root, hidden: true } };
  const parser = strictly(
    yargs(args)
      .scriptName(`node dist/labs/${info.id}/main.js`)
      .usage(`$0 [options]\n\nRuns lab ${info.id} (${info.model}) as an echo server in the foreground. Stop it with Ctrl-C.`)
      .options({ ...options, ...flags?.options })
      .check((argv) => {
        const problem = oneOf(argv, args, 'protocol', info.protocols) ?? oneOf(argv, args, 'sandbox-deny', DENIES) ?? checkCommon(argv, args, capApplies) ?? flags?.check?.(argv, args);
        if (problem) throw new UserError(problem);
        return true;
      }),
    args,
  );
  return parser.parseSync();
}

/**
 * What the user typed for `--name`, for error messages: yargs turns `--port abc` into NaN, and
 * "got NaN" would not say what was wrong. `strictly` has refused a value flag given twice by the
 * time a check runs, so there is one occurrence to find.
 */
export function given(argv: Argv, args: readonly string[], name: string): string {
  const value = argv[name];
  if (typeof value === 'number' && !Number.isNaN(value)) return String(value);
  const raw = typedValues(args, name).at(-1);
  return raw === undefined ? String(value) : `'${raw}'`;
}

/** "--mux must be epoll or poll, got 'kqueue'": the project's wording for a flag with choices. */
export function oneOf(argv: Argv, args: readonly string[], name: string, choices: readonly string[]): string | undefined {
  return choices.includes(argv[name] as string) ? undefined : `--${name} must be ${choices.join(', ').replace(/, ([^,]*)$/, ' or $1')}, got ${given(argv, args, name)}`;
}

function checkCommon(argv: Argv, args: readonly string[], capApplies: boolean): string | undefined {
  const integer = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const value = argv[name];
    return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
      ? undefined
      : `--${name} must be a whole number from ${min} to ${max}, got ${given(argv, args, name)}`;
  };
  const positive = (name: string) => {
    const value = argv[name];
    return typeof value === 'number' && Number.isFinite(value) && value > 0
      ? undefined
      : `--${name} must be a positive number of seconds, got ${given(argv, args, name)}`;
  };
  return (
    integer('port', 0, 65535) ??
    integer('backlog', 1, 65535) ??
    integer('work-us', 0, 10_000_000) ??
    (capApplies ? integer('max-conns', 1) : undefined) ??
    integer('max-pending', 1) ??
    integer('max-header-bytes', 64) ??
    integer('max-body-bytes', 0) ??
    positive('shutdown-timeout') ??
    positive('idle-timeout') ??
    positive('max-lifetime') ??
    positive('header-timeout') ??
    (String(argv.host).trim() === '' ? '--host must not be empty' : undefined) ??
    checkRoot(argv)
  );
}

/** --root goes with --protocol files, and only with it. */
function checkRoot(argv: Argv): string | undefined {
  const root = argv.root as string | undefined;
  if (argv.protocol === 'files') return root === undefined || root === '' ? '--protocol files needs --root DIR, the directory to serve' : undefined;
  return root === undefined ? undefined : '--root applies to --protocol files only';
}

function toServerOptions(argv: Argv, log: ServerOptions['log']): ServerOptions {
  const seconds = (name: string) => Math.round((argv[name] as number) * 1000);
  return {
    host: argv.host as string,
    port: argv.port as number,
    backlog: argv.backlog as number,
    protocol: {
      protocol: argv.protocol as ProtocolName,
      maxHeaderBytes: argv['max-header-bytes'] as number,
      maxBodyBytes: argv['max-body-bytes'] as number,
      splitReplies: argv['split-replies'] as boolean,
      ...(argv.protocol === 'files' ? { root: openRoot(argv.root as string) } : {}),
    },
    work: workSpec(argv['work-us'] as number),
    limits: {
      idleTimeoutMs: seconds('idle-timeout'),
      maxLifetimeMs: seconds('max-lifetime'),
      headerTimeoutMs: seconds('header-timeout'),
      maxPendingBytes: argv['max-pending'] as number,
    },
    // Where the cap does not apply the lab holds one client at a time, which is what 1 says.
    noDelay: argv.nodelay as boolean,
    maxConns: (argv['max-conns'] as number | undefined) ?? 1,
    shutdownTimeoutMs: seconds('shutdown-timeout'),
    sandbox: argv.sandbox as boolean,
    sandboxDeny: argv['sandbox-deny'] as Deny,
    log,
  };
}

/**
 * First SIGINT/SIGTERM: stop accepting and let open connections finish within the shutdown
 * timeout, then exit 0. A second signal closes everything at once.
 */
function handleSignals(started: Promise<RunningServer>, options: ServerOptions, notifier: Notifier | undefined): void {
  let closing = false;
  const onSignal = async (signal: NodeJS.Signals) => {
    // Start-up failures are reported by runLab; there is nothing to shut down then.
    const server = await started.catch(() => undefined);
    if (!server) return;
    if (closing) {
      options.log.info(`${signal} again: closing every connection now`);
      void server.close(0);
      return;
    }
    closing = true;
    // No longer ready: systemd (and whoever it tells) stops counting on this lab while it drains.
    notifier?.send('STOPPING=1');
    // Stop accepting first, then say so: whoever reads the line may connect at once, and must be
    // refused (the robust suite, case 12, caught a connection slipping in between on a busy machine).
    const closed = server.close();
    options.log.info(`${signal}: no longer accepting; open connections have ${options.shutdownTimeoutMs / 1000} s to finish`);
    closed.then(
      () => {
        options.log.info('stopped');
        process.exitCode = 0;
        // Everything is closed, so the process should end by itself; if a stray handle keeps it
        // alive, that is a bug to see in the output, not a hang.
        setTimeout(() => {
          options.log.warn('a handle kept the process alive after shutdown; exiting anyway');
          process.exit(0);
        }, 1000).unref();
      },
      (error: unknown) => {
        options.log.warn(`shutdown failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', (signal) => void onSignal(signal));
  process.on('SIGTERM', (signal) => void onSignal(signal));
}
