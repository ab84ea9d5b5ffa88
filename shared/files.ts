/**
 * The files protocol core: static files over HTTP/1.1, sans-I/O. Bytes in, decisions out.
 *
 * Like the echo protocols (protocol.ts), it never touches a socket or a file. It is split at the
 * one place a file server has to ask the file system something:
 *   1. `FilesConversation` frames the byte stream with the project's one HTTP framing
 *      (http-framing.ts, with the same limits as the http echo) and hands the lab each request as
 *      a `FileJob` (`Carrier.sendFile`): the path already checked and split into segments, or the
 *      reason it was refused (400, 405).
 *   2. The lab asks the file system about those segments (shared/file-open.ts: realpath under the
 *      root, open with O_NOFOLLOW, fstat) and hands the answer back as `FileFacts`.
 *   3. `fileReply(job, facts)` decides the response: its head's bytes and which byte range of the
 *      file follows (200, 206, 404, 403, 405, 416). The lab sends that range its own model's way:
 *      through Node streams, or sendfile(2) or read/write by hand.
 *
 * What is served: GET and HEAD of regular files under the root, keep-alive and pipelining as in
 * the http echo, Content-Length, Content-Type from the extension, Last-Modified, Accept-Ranges,
 * one `Range: bytes=...` per request (206; 416 when it starts past the end; several ranges, or one
 * that does not parse, are ignored and the whole file is sent, as RFC 9110 §14.2 allows). A
 * directory is answered with its index.html, or 404; asked for without its trailing slash
 * ("/sub"), it is redirected (301, `Location: /sub/`) as web servers do, so the page's relative
 * links resolve under it, not beside it. Anything else: 405 with `Allow: GET, HEAD`.
 *
 * Hostile paths (the checks of `parseTarget`, before any file-system call): only origin-form
 * targets ("/a/b"); each segment percent-decoded exactly once, so "%252e%252e" is the literal
 * name "%2e%2e" and never "..". Refused with 400 and the connection closed: ".." or "." segments
 * (raw or encoded), an encoded "/" (%2f) or any backslash, NUL or another control character,
 * empty segments ("//"), malformed percent-encoding, an absolute-form target ("http://h/x") or
 * "*", paths over MAX_PATH_BYTES or segments over NAME_MAX_BYTES. A symlink that leads outside the
 * root is the file system's answer, not the path's: the lab's lookup reports it and it is 403.
 */

import type { Carrier, FileJob, ProtocolConfig, Refusal } from './conversation.js';
import { connectionHeader, HttpFraming } from './http-framing.js';
import type { RequestHead } from './http-parser.js';

export type { FileJob, Refusal } from './conversation.js';

/** Longest request path (before the query) accepted: far beyond any real file tree, far below the head limit. */
export const MAX_PATH_BYTES = 1024;
/** Longest path segment: Linux's NAME_MAX, so a longer one could never name a file anyway. */
export const NAME_MAX_BYTES = 255;

/** What the file system said about a job's segments (shared/file-open.ts finds it out). */
export type FileFacts =
  | {
      readonly kind: 'file';
      readonly size: number;
      readonly mtimeMs: number;
      /** for the Content-Type */
      readonly name: string;
      /** The segments named a directory and this is its index.html. */
      readonly index?: boolean;
    }
  | { readonly kind: 'missing'; readonly reason: string }
  | { readonly kind: 'forbidden'; readonly reason: string }
  /** The server could not look now (out of descriptors: EMFILE, ENFILE): 503, try again. */
  | { readonly kind: 'unavailable'; readonly reason: string };

/** The decided response: head bytes, then `length` bytes of the file from `start` (0: none). */
export interface FileReply {
  readonly status: number;
  readonly head: Buffer;
  readonly start: number;
  readonly length: number;
  /** Why it was refused (a status of 400 or more), for the log line. */
  readonly reason: string | undefined;
}

// --- Framing: requests into jobs --------------------------------------------------------------

export class FilesConversation extends HttpFraming {
  constructor(config: ProtocolConfig, carrier: Carrier) {
    // A GET or HEAD has no use for a body: it is counted against the limit and dropped.
    super(config, carrier, { keepBody: false, expect: false });
  }

  protected request(head: RequestHead, _body: Buffer, keepAlive: boolean): { answer: FileJob[]; keepAlive: boolean } {
    const method = head.method;
    const path = parseTarget(head.target);
    const refused: Refusal | undefined =
      method !== 'GET' && method !== 'HEAD' ? { status: 405, reason: `method ${method} (this server only reads files)` } : 'reason' in path ? path : undefined;
    // A hostile or malformed path ends the connection: whoever sent it gets nothing more.
    const stays = keepAlive && refused?.status !== 400;
    const job: FileJob = {
      kind: 'file',
      head: method === 'HEAD',
      method,
      target: head.target,
      segments: 'segments' in path ? path.segments : [],
      directory: 'segments' in path && path.directory,
      refused,
      range: head.range,
      connection: connectionHeader(stays, head),
    };
    return { answer: [job], keepAlive: stays };
  }
}

// --- The path: every check that needs no file system ------------------------------------------

/**
 * A request target into path segments under the root, or the reason it is refused. Pure: the
 * same target always gets the same answer, whatever is on disk.
 */
export function parseTarget(target: string): { readonly segments: readonly string[]; readonly directory: boolean } | Refusal {
  const refuse = (reason: string): Refusal => ({ status: 400, reason });
  if (Buffer.byteLength(target) > MAX_PATH_BYTES) return refuse(`path over ${MAX_PATH_BYTES} bytes`);
  // Absolute-form ("http://host/x"), authority-form and "*" name no file under a root.
  if (!target.startsWith('/')) return refuse('not a path starting with /');
  const end = target.search(/[?#]/);
  const raw = end < 0 ? target : target.slice(0, end);
  if (raw.includes('\\')) return refuse('a backslash in the path');
  const parts = raw.slice(1).split('/');
  // "/dir/" asks for the directory itself: its last, empty segment is dropped.
  const directory = parts.length > 0 && parts[parts.length - 1] === '';
  if (directory) parts.pop();
  const segments: string[] = [];
  for (const part of parts) {
    if (part === '') return refuse('an empty path segment (//)');
    let name: string;
    try {
      // Exactly once: "%252e" becomes the name "%2e", never ".".
      name = decodeURIComponent(part);
    } catch {
      return refuse('malformed percent-encoding');
    }
    if (name === '..' || name === '.') return refuse(`a '${name}' segment`);
    if (name.includes('/')) return refuse('an encoded / inside a segment');
    if (name.includes('\\')) return refuse('an encoded backslash');
    if (name.includes('\0')) return refuse('a NUL byte');
    // eslint-disable-next-line no-control-regex
    if (/[\u0001-\u001f\u007f]/.test(name)) return refuse('a control character');
    if (Buffer.byteLength(name) > NAME_MAX_BYTES) return refuse(`a segment over ${NAME_MAX_BYTES} bytes`);
    segments.push(name);
  }
  return { segments, directory };
}

/**
 * One `Range: bytes=...` against a file of `size` bytes: the range to send, 'unsatisfiable'
 * (416), or undefined to ignore the header and send the whole file (several ranges, or one that
 * does not parse: RFC 9110 §14.2 lets a server ignore Range).
 */
export function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  const from = Number(first);
  const to = Number(last);
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) return undefined;
  if (first === '') {
    // A suffix: the last `to` bytes.
    if (to === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - to), end: size - 1 };
  }
  if (last !== '' && to < from) return undefined;
  if (from >= size) return 'unsatisfiable';
  return { start: from, end: last === '' ? size - 1 : Math.min(to, size - 1) };
}

/** Content-Type by extension: the common web types; anything else is plain bytes. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  xml: 'application/xml',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  ico: 'image/x-icon',
  pdf: 'application/pdf',
  wasm: 'application/wasm',
  gz: 'application/gzip',
};

export function contentType(name: string): string {
  const dot = name.lastIndexOf('.');
  const slash = name.lastIndexOf('/');
  const extension = dot > slash + 1 ? name.slice(dot + 1).toLowerCase() : '';
  return CONTENT_TYPES[extension] ?? 'application/octet-stream';
}

// --- The response -----------------------------------------------------------------------------

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  206: 'Partial Content',
  301: 'Moved Permanently',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  416: 'Range Not Satisfiable',
  503: 'Service Unavailable',
};

/**
 * The response to `job`, given what the file system said (`facts`; ignored for a job refused
 * already). Pure: the same job and facts always give the same bytes.
 */
export function fileReply(job: FileJob, facts: FileFacts | undefined): FileReply {
  const refusal: Refusal | undefined =
    job.refused ??
    (facts === undefined || facts.kind === 'missing'
      ? { status: 404, reason: facts?.reason ?? 'no such file' }
      : facts.kind === 'forbidden'
        ? { status: 403, reason: facts.reason }
        : facts.kind === 'unavailable'
          ? { status: 503, reason: facts.reason }
          : undefined);
  if (refusal || facts?.kind !== 'file') {
    const { status, reason } = refusal!;
    return errorReply(job, status, reason, status === 405 ? ['Allow: GET, HEAD'] : status === 503 ? ['Retry-After: 1'] : []);
  }
  const slash = directorySlash(job.target);
  if (facts.index && slash) return { ...errorReply(job, 301, '', [`Location: ${slash}`]), reason: undefined };
  const size = facts.size;
  const range = job.range === undefined ? undefined : parseRange(job.range, size);
  if (range === 'unsatisfiable') {
    return errorReply(job, 416, `range ${job.range} is outside the file`, [`Content-Range: bytes */${size}`]);
  }
  const start = range?.start ?? 0;
  const length = range ? range.end - range.start + 1 : size;
  const status = range ? 206 : 200;
  const head = headBytes(status, [
    `Content-Type: ${contentType(facts.name)}`,
    `Content-Length: ${length}`,
    `Last-Modified: ${new Date(facts.mtimeMs).toUTCString()}`,
    'Accept-Ranges: bytes',
    ...(range ? [`Content-Range: bytes ${range.start}-${range.end}/${size}`] : []),
    ...(job.connection ? [`Connection: ${job.connection}`] : []),
  ]);
  return { status, head, start, length: job.head ? 0 : length, reason: undefined };
}

/** A target without the trailing slash of its path: where to send it, the slash added ("/sub?q" → "/sub/?q"); else undefined. */
function directorySlash(target: string): string | undefined {
  const end = target.search(/[?#]/);
  const path = end < 0 ? target : target.slice(0, end);
  return path.endsWith('/') ? undefined : `${path}/${end < 0 ? '' : target.slice(end)}`;
}

function errorReply(job: FileJob, status: number, reason: string, extra: readonly string[]): FileReply {
  // The body says what went wrong in general, never the path: a reply must not echo its target.
  const body = `${STATUS_TEXT[status]}\n`;
  const head = headBytes(status, [
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...extra,
    ...(job.connection ? [`Connection: ${job.connection}`] : []),
  ]);
  return { status, head: job.head ? head : Buffer.concat([head, Buffer.from(body, 'latin1')]), start: 0, length: 0, reason };
}

function headBytes(status: number, fields: readonly string[]): Buffer {
  return Buffer.from(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n${fields.map((field) => `${field}\r\n`).join('')}\r\n`, 'latin1');
}
