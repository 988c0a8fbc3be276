import { readFileSync } from 'node:fs';
import { shimFile } from '../egress/egress-broker.ts';

/**
 * The egress sidecar's program, in each app pod beside the app: the pod's end of the egress broker. It
 * listens on the unix socket the app's preload sends every call to (/run/egress/proxy.sock, as under the
 * local driver), and passes each request and CONNECT tunnel to the broker's Service over TLS, adding the
 * pod's projected service-account token (audience `microapp-egress`) as `Proxy-Authorization`. The token is
 * mounted in this container only: the app's code never holds it, and without it the broker refuses
 * anything that reaches it directly. The token is read again every 30 s, as the kubelet renews it.
 * Plain CommonJS on Node's own modules: it runs on the runtime image with nothing installed.
 */
export const egressSidecar = `'use strict';
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const broker = new URL(process.env.BROKER_URL);
if (broker.protocol !== 'https:') throw new Error('the broker is reached over https only, not ' + broker.href);
const socketPath = process.env.EGRESS_SOCKET;
const target = { host: broker.hostname, port: Number(broker.port || 443), servername: broker.hostname };
const agent = new https.Agent({ keepAlive: true, maxSockets: 64 });
let token = '';
let readAt = 0;
function bearer() {
  if (!token || Date.now() - readAt > 30000) {
    token = fs.readFileSync(process.env.EGRESS_TOKEN_FILE, 'utf8').trim();
    readAt = Date.now();
  }
  return 'Bearer ' + token;
}
const hop = new Set(['proxy-authorization', 'proxy-connection', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
function failed(res, e) {
  if (res.headersSent) return res.destroy();
  const body = JSON.stringify({ error: 'egress_unavailable', detail: 'the egress broker did not answer (' + e.message + '): ask a platform admin' });
  res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
const server = http.createServer((req, res) => {
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!hop.has(k)) headers[k] = v;
  try {
    headers['proxy-authorization'] = bearer();
  } catch (e) {
    return failed(res, e);
  }
  const up = https.request({ ...target, agent, method: req.method, path: req.url, headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  up.on('error', (e) => failed(res, e));
  req.pipe(up);
});
server.on('connect', (req, socket, head) => {
  socket.on('error', () => {});
  let authorization;
  try {
    authorization = bearer();
  } catch {
    return socket.end('HTTP/1.1 502 Bad Gateway\\r\\nconnection: close\\r\\n\\r\\n');
  }
  const up = https.request({ ...target, method: 'CONNECT', path: req.url, headers: { host: req.url, 'proxy-authorization': authorization } });
  up.on('connect', (answer, upstream, upHead) => {
    upstream.on('error', () => socket.destroy());
    socket.write('HTTP/1.1 ' + answer.statusCode + ' ' + (answer.statusMessage || '') + '\\r\\n\\r\\n');
    if (answer.statusCode !== 200) {
      upstream.pipe(socket);
      return;
    }
    if (upHead.length) socket.write(upHead);
    if (head.length) upstream.write(head);
    upstream.pipe(socket).pipe(upstream);
  });
  up.on('error', () => socket.end('HTTP/1.1 502 Bad Gateway\\r\\nconnection: close\\r\\n\\r\\n'));
  up.end();
});
try { fs.unlinkSync(socketPath); } catch {}
server.listen(socketPath, () => {
  fs.chmodSync(socketPath, 0o666);
  console.log('egress: ' + socketPath + ' goes to ' + broker.origin);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

/** The sidecar's start hook: the kubelet starts the app only once the socket is there (or 30 s have passed). */
export const waitForSocket = `const fs = require('node:fs');
const until = Date.now() + 30000;
(function wait() {
  if (fs.existsSync(process.env.EGRESS_SOCKET) || Date.now() > until) return;
  setTimeout(wait, 100);
})();
`;

/**
 * The first init container's program: puts the preload (the local driver's shim) where the app loads it.
 * Init containers run again when a pod restarts: the read-only copy of the last run is replaced.
 */
export const writeShim = `const fs = require('node:fs');
fs.rmSync('/run/egress/shim.cjs', { force: true });
fs.writeFileSync('/run/egress/shim.cjs', process.env.EGRESS_SHIM, { mode: 0o444 });
console.log('the egress preload is in /run/egress/shim.cjs');
`;

let shim: string | null = null;
/** The preload an app loads (`--require`): fetch, http and https go to the socket at /run/egress. */
export const egressShim = () => {
  shim ??= readFileSync(shimFile, 'utf8');
  return shim;
};
