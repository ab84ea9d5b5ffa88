/** HTTP/1.1 requests and the echo server's exact responses, as raw strings. */

export const httpRequest = (target: string, body = '', extra = '') =>
  `POST ${target} HTTP/1.1\r\nHost: test\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

export const httpResponse = (body: string, close = false) =>
  'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n' +
  `Content-Length: ${Buffer.byteLength(body)}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${body}`;

/**
 * Status codes of every response in `raw`, in order (a pipelined reply holds several), framed by
 * each response's Content-Length. Stops at anything that is not a whole response.
 */
export function statusCodes(raw: string): number[] {
  return responses(raw).codes;
}

/** How many bytes of `raw` are whole responses, from the start: `raw.length` when nothing is cut short. */
export function wholeResponsesLength(raw: string): number {
  return responses(raw).length;
}

function responses(raw: string): { codes: number[]; length: number } {
  const codes: number[] = [];
  let at = 0;
  for (;;) {
    const rest = raw.slice(at);
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(rest);
    const headEnd = rest.indexOf('\r\n\r\n');
    if (!status || headEnd < 0) return { codes, length: at };
    const length = Number(/\r\nContent-Length: (\d+)\r\n/i.exec(rest.slice(0, headEnd + 2))?.[1] ?? 0);
    // An interim 100 has no body; a response whose body is not all here is not whole.
    if (headEnd + 4 + length > rest.length) return { codes, length: at };
    codes.push(Number(status[1]));
    at += headEnd + 4 + length;
  }
}
