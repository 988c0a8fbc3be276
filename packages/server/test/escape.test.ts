import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { detectCgroups } from '../src/modules/runtime/cgroups.ts';
import { type SandboxedProcess, sandboxAvailable, startSandboxed } from '../src/modules/runtime/sandbox.ts';
import { getOverSocket, sandboxReady } from './harness.ts';

/**
 * The escape suite: one hostile app, one attack per test, each aimed only at addresses of this machine.
 * Every test asserts that the attack failed, and that the neighbouring app and the host's own service kept
 * answering. The app reports what happened from the inside; the test never trusts it for the verdict
 * when the host can check for itself.
 */
const hostileSource = `
const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns');
const http = require('node:http');
const { spawnSync, spawn } = require('node:child_process');
const tryIt = (fn) => { try { return { ok: true, value: fn() }; } catch (e) { return { ok: false, error: e.code || e.message }; } };
const dial = (host, port) => new Promise((resolve) => {
  const s = net.connect({ host, port }, () => { s.destroy(); resolve('connected'); });
  s.on('error', (e) => resolve(e.code));
  setTimeout(() => { s.destroy(); resolve('timeout'); }, 2000);
});
const env = process.env;
const attacks = {
  'ip-host-loopback': () => dial('127.0.0.1', Number(env.HOST_PORT)),
  'ip-postgresql': () => dial('127.0.0.1', 5432),
  'ipv6-loopback': () => dial('::1', Number(env.HOST_PORT)),
  'host-interface': () => dial(env.HOST_ADDRESS, Number(env.HOST_PORT)),
  'dns': () => new Promise((resolve) => dns.lookup('registry.npmjs.org', (e, a) => resolve(e ? e.code : 'resolved ' + a))),
  'host-shadow': () => tryIt(() => fs.readFileSync('/etc/shadow', 'utf8').length),
  'other-app-data': () => tryIt(() => fs.readdirSync(env.NEIGHBOUR_DATA)),
  'other-app-secret': () => tryIt(() => fs.readdirSync('/run/secrets')),
  'host-proc': () => tryIt(() => fs.readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).length),
  'proc-mem': () => tryIt(() => fs.openSync('/proc/' + env.HOST_PID + '/mem', 'r')),
  'write-runtime': () => tryIt(() => fs.writeFileSync('/usr/bin/evil', 'x')),
  'write-code': () => tryIt(() => fs.writeFileSync('/app/server.js', 'x')),
  'kill-host-process': () => tryIt(() => process.kill(Number(env.HOST_PID), 0)),
  'mount': () => spawnSync('mount', ['-t', 'tmpfs', 'none', '/tmp'], { encoding: 'utf8' }).status,
  'setuid-su': () => spawnSync('su', ['root', '-c', 'id -u'], { encoding: 'utf8', input: '\\n', timeout: 5000 }).status,
  'dmesg': () => spawnSync('dmesg', [], { encoding: 'utf8' }).status,
  'new-user-namespace': () => spawnSync('unshare', ['--user', 'true'], { encoding: 'utf8' }).status,
  'new-network-namespace': () => spawnSync('unshare', ['--user', '--net', 'true'], { encoding: 'utf8' }).status,
  'docker-socket': () => new Promise((resolve) => {
    const s = net.connect('/var/run/docker.sock', () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve(e.code));
  }),
  'device': () => tryIt(() => fs.openSync('/dev/sda', 'r')),
  'listen-tcp': () => new Promise((resolve) => {
    const srv = net.createServer((c) => c.end('hostile-listener')).listen(0, '0.0.0.0', () => resolve(srv.address().port));
    srv.on('error', (e) => resolve(e.code));
  }),
  'fork-bomb': () => {
    let started = 0;
    for (let i = 0; i < 400; i++) {
      try { const c = spawn('sleep', ['5'], { stdio: 'ignore' }); c.on('error', () => {}); if (c.pid) started++; } catch {}
    }
    return started;
  },
  'proc-host-details': () => Object.fromEntries(['/proc/cmdline', '/proc/1/cmdline', '/proc/timer_list', '/proc/kallsyms', '/proc/sched_debug'].map((f) => [f, tryIt(() => fs.readFileSync(f, 'utf8').slice(0, 4000))])),
  'setuid-copy': () => tryIt(() => { fs.copyFileSync('/usr/bin/su', '/data/su'); fs.chmodSync('/data/su', 0o4755); fs.writeFileSync('/data/made-by-app', 'x'); return process.getuid(); }),
  'cpu-hog': () => { const end = Date.now() + 1500; while (Date.now() < end) {} return 'done'; },
  'memory-bomb': () => { const keep = []; for (;;) keep.push(Buffer.alloc(1 << 20, 1)); },
};
http.createServer(async (req, res) => {
  const name = req.url.slice(1);
  if (name === 'healthz') return res.end('ok');
  const attack = attacks[name];
  if (!attack) { res.statusCode = 404; return res.end(); }
  res.end(JSON.stringify(await attack()));
}).listen(env.PORT);
`;

describe('escape suite: a hostile app stays in its sandbox', () => {
  let dir: string;
  let host: ReturnType<typeof createServer>;
  let hostile: SandboxedProcess;
  let neighbour: SandboxedProcess;
  const cgroups = detectCgroups();
  const limits = { memoryMb: 96, cpu: 0.25, pids: 64 };

  before(async () => {
    assert.ok(sandboxAvailable(), 'bubblewrap is required: apt-get install bubblewrap (.ci/run installs it)');
    assert.ok(cgroups, 'this machine must give the platform cgroups (the server runs as root in CI)');
    dir = mkdtempSync(join(tmpdir(), 'microapp-escape-'));
    host = createServer((_q, r) => r.end('host'));
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    const hostAddress =
      Object.values(networkInterfaces())
        .flat()
        .find((i) => i && i.family === 'IPv4' && !i.internal)?.address ?? '127.0.0.2';
    for (const name of ['hostile', 'neighbour']) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'server.js'), hostileSource);
    }
    writeFileSync(join(dir, 'neighbour-secret-file'), 'x');
    neighbour = startSandboxed(
      {
        appDir: join(dir, 'neighbour'),
        dataDir: join(dir, 'neighbour-data'),
        socketDir: join(dir, 'neighbour-sock'),
        entry: 'server.js',
        secrets: { NEIGHBOUR_TOKEN: 'neighbour-canary' },
        limits,
        hostUid: 123_456,
      },
      cgroups,
    );
    writeFileSync(join(dir, 'marker'), 'x');
    hostile = startSandboxed(
      {
        appDir: join(dir, 'hostile'),
        dataDir: join(dir, 'hostile-data'),
        socketDir: join(dir, 'hostile-sock'),
        entry: 'server.js',
        memoryMb: limits.memoryMb,
        limits,
        hostUid: 123_457,
        env: {
          HOST_PORT: String((host.address() as AddressInfo).port),
          HOST_ADDRESS: hostAddress,
          HOST_PID: String(process.pid),
          NEIGHBOUR_DATA: join(dir, 'neighbour-data'),
        },
      },
      cgroups,
    );
    await Promise.all([sandboxReady(neighbour), sandboxReady(hostile)]);
    mkdirSync(join(dir, 'neighbour-data'), { recursive: true });
    writeFileSync(join(dir, 'neighbour-data', 'answers.csv'), 'private');
  });
  after(async () => {
    await hostile?.stop('SIGKILL');
    await neighbour?.stop('SIGKILL');
    host?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs one attack and checks that the neighbour and the host still answer. */
  async function attack(name: string): Promise<unknown> {
    const res = await getOverSocket(hostile.socketPath, `/${name}`).catch((e: Error) => ({
      status: 0,
      body: e.message,
    }));
    assert.equal(
      (await getOverSocket(neighbour.socketPath, '/healthz')).body,
      'ok',
      `the neighbour kept serving after ${name}`,
    );
    assert.equal(
      await (await fetch(`http://127.0.0.1:${(host.address() as AddressInfo).port}/`)).text(),
      'host',
    );
    return res.status === 200 ? JSON.parse(res.body) : { failed: res.status, body: res.body };
  }
  const refusedNetwork = (v: unknown) =>
    assert.ok(typeof v === 'string' && v !== 'connected' && v !== 'timeout', `got ${JSON.stringify(v)}`);
  const failed = (v: unknown) => assert.equal((v as { ok: boolean }).ok, false, JSON.stringify(v));

  test('1. TCP by address to a service on the host’s loopback', async () =>
    refusedNetwork(await attack('ip-host-loopback')));
  test('2. TCP to the host’s PostgreSQL', async () => refusedNetwork(await attack('ip-postgresql')));
  test('3. IPv6 loopback', async () => refusedNetwork(await attack('ipv6-loopback')));
  test('4. the host’s own interface address', async () => refusedNetwork(await attack('host-interface')));
  test('5. DNS', async () => {
    const v = await attack('dns');
    assert.ok(typeof v === 'string' && !v.startsWith('resolved'), `got ${v}`);
  });
  test('6. the host’s password hashes', async () => failed(await attack('host-shadow')));
  test('7. another app’s data folder', async () => failed(await attack('other-app-data')));
  test('8. another app’s secrets', async () => {
    const v = (await attack('other-app-secret')) as { ok: boolean; value?: string[] };
    assert.ok(!v.ok || !v.value?.includes('NEIGHBOUR_TOKEN'), JSON.stringify(v));
  });
  test('9a. host details in /proc: the kernel command line, timers and symbols, the sandbox’s own command line', async () => {
    const v = (await attack('proc-host-details')) as Record<string, { ok: boolean; value?: string }>;
    for (const f of ['/proc/cmdline', '/proc/timer_list', '/proc/kallsyms', '/proc/sched_debug'])
      assert.ok(!v[f]!.ok || v[f]!.value === '', `${f} is readable: ${JSON.stringify(v[f]).slice(0, 200)}`);
    const init = v['/proc/1/cmdline']!;
    assert.ok(!init.ok || !init.value!.includes(dir), `/proc/1/cmdline shows host paths: ${init.value}`);
    assert.ok(!init.ok || !init.value!.includes('hostile-sock'), 'nor the socket folder');
  });
  test('15a. what the app writes belongs to an unprivileged host user, so a setuid copy is worth nothing', async () => {
    const v = (await attack('setuid-copy')) as { ok: boolean; value?: number };
    assert.equal(v.ok, true, JSON.stringify(v));
    for (const f of ['made-by-app', 'su']) {
      const st = statSync(join(dir, 'hostile-data', f));
      assert.equal(st.uid, 123_457, `${f} belongs to the app's own host user, not root`);
      assert.notEqual(st.uid, 0);
    }
    assert.ok(
      !readdirSync(join(dir)).includes('neighbour-data') ||
        statSync(join(dir, 'neighbour-data')).uid === 123_456,
    );
  });
  test('9. the host’s processes in /proc', async () => {
    const v = (await attack('host-proc')) as { value: number };
    assert.ok(v.value <= 3, `it sees ${v.value} processes: its own pid namespace only`);
  });
  test('10. the platform process’s memory through /proc', async () => failed(await attack('proc-mem')));
  test('11. writing into the runtime', async () => failed(await attack('write-runtime')));
  test('12. rewriting its own code', async () => {
    failed(await attack('write-code'));
    assert.match(readFileSync(join(dir, 'hostile', 'server.js'), 'utf8'), /attacks/);
  });
  test('13. signalling a host process', async () => failed(await attack('kill-host-process')));
  test('14. mount', async () => assert.notEqual(await attack('mount'), 0));
  test('15. a setuid binary (su)', async () => assert.notEqual(await attack('setuid-su'), 0));
  test('16. the kernel log', async () => assert.notEqual(await attack('dmesg'), 0));
  test('16a. a new user namespace (the kernel attack surface seccomp closes)', async () =>
    assert.notEqual(await attack('new-user-namespace'), 0));
  test('16b. a network namespace of its own', async () =>
    assert.notEqual(await attack('new-network-namespace'), 0));
  test('17. a container engine’s socket', async () => refusedNetwork(await attack('docker-socket')));
  test('18. a raw disk device', async () => failed(await attack('device')));
  test('19. a listening TCP port is not reachable from the host', async () => {
    const port = (await attack('listen-tcp')) as number;
    assert.equal(typeof port, 'number', 'it may listen inside its own network namespace');
    const reached = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => s.once('data', (d) => resolve(String(d))));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      setTimeout(() => resolve('timeout'), 2000);
    });
    assert.notEqual(reached, 'hostile-listener');
  });
  test('20. a fork bomb stops at the process limit', async () => {
    const started = (await attack('fork-bomb')) as number;
    assert.ok(started < limits.pids, `started ${started}; the limit is ${limits.pids}`);
  });
  test('21. a CPU hog is throttled to its quota', async () => {
    await attack('cpu-hog');
    const base = [
      '/sys/fs/cgroup/cpu/microapp',
      '/sys/fs/cgroup/microapp',
      '/sys/fs/cgroup/unified/microapp',
    ].find((b) => {
      try {
        return readdirSync(b).some((d) => d.startsWith('hostile-sock-'));
      } catch {
        return false;
      }
    })!;
    const group = readdirSync(base).find((d) => d.startsWith('hostile-sock-'))!;
    const stat = readFileSync(join(base, group, 'cpu.stat'), 'utf8');
    assert.ok(Number(/nr_throttled (\d+)/.exec(stat)?.[1]) > 0, `the kernel throttled it: ${stat}`);
  });
  test('22. a memory bomb is killed by the kernel; nothing else is', async () => {
    await attack('memory-bomb');
    for (let i = 0; i < 50 && hostile.child.exitCode === null && hostile.child.signalCode === null; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      hostile.child.signalCode !== null || hostile.child.exitCode !== null,
      'the hostile app is gone',
    );
    assert.equal(hostile.outOfMemory(), true, 'killed for its memory, by the kernel');
    assert.equal((await getOverSocket(neighbour.socketPath, '/healthz')).body, 'ok');
  });
});
