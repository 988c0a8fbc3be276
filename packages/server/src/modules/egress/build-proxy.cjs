// Runs a build step (`npm ci`) inside a sandbox whose only way out is the egress broker's unix socket at
// /run/egress/proxy.sock: listens on 127.0.0.1:3128 inside the sandbox (npm needs a TCP proxy), relays
// every connection to the broker, runs the command with npm's proxy settings pointing here, and exits
// with the command's code. The broker decides what may be reached (the npm registry, and nothing else).
// The first refusal stops the command: npm answers a refused tunnel by opening another at once, hundreds of
// times a second, so the step would otherwise hang until the pipeline's time runs out.
'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');

const [command, ...args] = process.argv.slice(2);
let child = null;
let refused = false;

/** The broker's refusal in the first bytes of a response: `HTTP/1.1 4xx` with `x-microapp-egress: denied`. */
function refusal(chunk) {
  const text = chunk.subarray(0, 8192).toString('latin1');
  if (!/^HTTP\/1\.[01] 4\d\d /.test(text)) return null;
  const end = text.indexOf('\r\n\r\n');
  if (end === -1 || !/\r\nx-microapp-egress: denied\r\n/i.test(text.slice(0, end + 2))) return null;
  try {
    return JSON.parse(text.slice(end + 4)).detail ?? 'refused';
  } catch {
    return 'refused';
  }
}

const relay = net.createServer((inside) => {
  const broker = net.connect('/run/egress/proxy.sock');
  inside.on('error', () => broker.destroy());
  broker.on('error', () => inside.destroy());
  broker.once('data', (chunk) => {
    const why = refusal(chunk);
    if (!why || refused) return;
    refused = true;
    process.stderr.write(`egress_denied: the platform's egress broker refused the way out: ${why}\n`);
    // npm, in that loop, does not stop on SIGTERM (seen: still retrying 30 minutes later).
    if (child) child.kill('SIGKILL');
  });
  inside.pipe(broker).pipe(inside);
});
relay.listen(3128, '127.0.0.1', () => {
  child = spawn(command, args, { stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    relay.close();
    process.exit(refused ? 1 : (code ?? (signal ? 128 : 1)));
  });
  child.on('error', (e) => {
    console.error(`${command}: ${e.message}`);
    process.exit(127);
  });
});
