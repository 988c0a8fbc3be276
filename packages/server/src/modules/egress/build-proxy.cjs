// Runs a build step (`npm ci`) inside a sandbox whose only way out is the egress broker's unix socket at
// /run/egress/proxy.sock: listens on 127.0.0.1:3128 inside the sandbox (npm needs a TCP proxy), relays
// every connection to the broker, runs the command with npm's proxy settings pointing here, and exits
// with the command's code. The broker decides what may be reached (the npm registry, and nothing else).
'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');

const [command, ...args] = process.argv.slice(2);
const relay = net.createServer((inside) => {
  const broker = net.connect('/run/egress/proxy.sock');
  inside.on('error', () => broker.destroy());
  broker.on('error', () => inside.destroy());
  inside.pipe(broker).pipe(inside);
});
relay.listen(3128, '127.0.0.1', () => {
  const child = spawn(command, args, { stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    relay.close();
    process.exit(code ?? (signal ? 128 : 1));
  });
  child.on('error', (e) => {
    console.error(`${command}: ${e.message}`);
    process.exit(127);
  });
});
