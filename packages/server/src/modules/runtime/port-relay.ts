/**
 * The relay for an app that listens on a TCP port: preloaded into the app's own process, it answers on the
 * instance's socket (the only way in) and passes each connection to 127.0.0.1:PORT inside the sandbox.
 * A connection that comes before the app listens is closed, which the readiness check reads as not ready.
 */
export function portRelay(port: number): string {
  return `'use strict';
const net = require('node:net');
const fs = require('node:fs');
const socket = '/run/app/app.sock';
try { fs.rmSync(socket, { force: true }); } catch {}
const relay = net.createServer((client) => {
  const app = net.connect(${port}, '127.0.0.1');
  client.pipe(app).pipe(client);
  const close = () => { client.destroy(); app.destroy(); };
  client.on('error', close);
  app.on('error', close);
});
relay.listen(socket);
relay.unref();
`;
}
