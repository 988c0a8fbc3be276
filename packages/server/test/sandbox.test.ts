import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scaffold } from '../../cli/src/scaffold.ts';
import { type SandboxedProcess, sandboxAvailable, startSandboxed } from '../src/modules/runtime/sandbox.ts';
import { getOverSocket, sandboxReady } from './harness.ts';

// An app that reports what it can reach from inside: the attacker's view.
const probe = `
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const http = require('node:http');
const attempt = (fn) => { try { return { ok: true, value: fn() } } catch (e) { return { ok: false, error: e.code || e.message } } };
const connect = (port) => new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve('connected'); });
  s.on('error', (e) => resolve(e.code));
  setTimeout(() => { s.destroy(); resolve('timeout'); }, 2000);
});
http.createServer(async (req, res) => {
  const hostPort = Number(process.env.HOST_PORT);
  const report = {
    uid: process.getuid(),
    secret: attempt(() => fs.readFileSync('/run/secrets/LEDGER_TOKEN', 'utf8')),
    hostPasswd: attempt(() => fs.readFileSync('/etc/passwd', 'utf8').length),
    hostHome: attempt(() => fs.readdirSync('/root')),
    writeApp: attempt(() => fs.writeFileSync('/app/x', 'x')),
    writeData: attempt(() => { fs.writeFileSync('/data/x', 'x'); return 'written'; }),
    interfaces: Object.keys(os.networkInterfaces()),
    hostLoopback: await connect(hostPort),
    env: Object.keys(process.env).sort(),
    processes: fs.readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).length,
  };
  res.end(JSON.stringify(report));
}).listen(process.env.PORT);
`;

describe('the sandbox: an app reaches nothing but its socket', () => {
  let dir: string;
  let hostServer: ReturnType<typeof createServer>;
  const running: SandboxedProcess[] = [];
  before(async () => {
    assert.ok(sandboxAvailable(), 'bubblewrap is required: apt-get install bubblewrap (.ci/run installs it)');
    dir = mkdtempSync(join(tmpdir(), 'microapp-sandbox-'));
    hostServer = createServer((_q, r) => r.end('host'));
    await new Promise<void>((r) => hostServer.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    for (const p of running) await p.stop();
    hostServer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a template app runs from its read-only artifact and answers on its unix socket', async () => {
    const app = scaffold({
      template: 'form',
      dir: join(dir, 'form-app'),
      owner: 'alice@example.com',
      department: 'finance',
    });
    const p = startSandboxed({
      appDir: app.dir,
      dataDir: join(dir, 'form-data'),
      socketDir: join(dir, 'form-sock'),
      entry: 'server.js',
      env: { MICROAPP_DEV_USER: 'alice@example.com' },
      memoryMb: 128,
    });
    running.push(p);
    await sandboxReady(p);
    const page = await getOverSocket(p.socketPath, '/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<form method="post" action="\/submit">/);
  });

  test('a hostile app finds no network, no host files, no writable code, no host environment; its secret is there', async () => {
    const appDir = join(dir, 'probe');
    mkdirSync(appDir);
    writeFileSync(join(appDir, 'server.js'), probe);
    const canary = `canary-${randomBytes(8).toString('hex')}`;
    process.env.MICROAPP_LEAK_CHECK = 'host-only';
    const p = startSandboxed({
      appDir,
      dataDir: join(dir, 'probe-data'),
      socketDir: join(dir, 'probe-sock'),
      entry: 'server.js',
      secrets: { LEDGER_TOKEN: canary },
      env: { HOST_PORT: String((hostServer.address() as AddressInfo).port) },
    });
    running.push(p);
    await sandboxReady(p);
    const report = JSON.parse((await getOverSocket(p.socketPath, '/')).body);
    assert.equal(report.uid, 65534, 'runs as nobody');
    assert.deepEqual(report.secret, { ok: true, value: canary }, 'the secret file is readable inside');
    assert.equal(report.hostPasswd.ok, false, 'no /etc from the host');
    assert.equal(report.hostHome.ok, false, 'no host home');
    assert.equal(report.writeApp.ok, false, 'the code is read-only');
    assert.deepEqual(report.writeData, { ok: true, value: 'written' }, '/data is the one writable place');
    assert.deepEqual(
      report.interfaces,
      ['lo'],
      'its own loopback only: a fresh network namespace with no route out',
    );
    assert.notEqual(report.hostLoopback, 'connected', "the host's loopback server is unreachable");
    assert.ok(!report.env.includes('MICROAPP_LEAK_CHECK'), 'the environment is cleared');
    assert.ok(report.processes <= 3, `only its own processes are visible (${report.processes})`);
    assert.equal(
      readFileSync(join(dir, 'probe-data', 'x'), 'utf8'),
      'x',
      'data survives outside the sandbox',
    );
  });

  test('stopping the supervisor side ends the app', async () => {
    const p = running[0]!;
    const code = await p.stop();
    assert.ok(code !== undefined);
    // bubblewrap exits first; the app it held dies with it a moment later (--die-with-parent).
    let refused = false;
    for (let i = 0; i < 40 && !refused; i++) {
      try {
        await getOverSocket(p.socketPath, '/');
        await new Promise((r) => setTimeout(r, 50));
      } catch {
        refused = true;
      }
    }
    assert.ok(refused, 'the app stops answering once its supervisor stops it');
  });
});
