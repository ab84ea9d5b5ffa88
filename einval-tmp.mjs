import net from 'node:net';
import koffi from 'koffi';
const server = net.createServer(() => {});
let n = 0;
server.on('error', (e) => { n++; console.log('error', e.code, n, !!server._handle); server.close(); });
server.listen(0, () => {
  const fd = server._handle.fd;
  const libc = koffi.load('libc.so.6');
  const shutdown = libc.func('int shutdown(int, int)');
  setTimeout(() => { console.log('shutdown', shutdown(fd, 0)); }, 100);
  setTimeout(() => console.log('total errors', n), 500);
});
