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
  const codes: number[] = [];
  let rest = raw;
  for (;;) {
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(rest);
    const headEnd = rest.indexOf('\r\n\r\n');
    if (!status || headEnd < 0) return codes;
    codes.push(Number(status[1]));
    const length = Number(/\r\nContent-Length: (\d+)\r\n/i.exec(rest.slice(0, headEnd + 2))?.[1] ?? 0);
    rest = rest.slice(headEnd + 4 + length);
  }
}
