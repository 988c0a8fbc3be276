import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openArchive } from '../src/modules/lifecycle/archive.ts';
import { codeImageOf, prepareVolume, sealAppData, volumeOf } from '../src/modules/runtime/data-volume.ts';
import { socketRoot } from '../src/modules/runtime/host-user.ts';
import { type SandboxedProcess, startSandboxed } from '../src/modules/runtime/sandbox.ts';
import { kekOf } from '../src/modules/secrets/envelope.ts';
import { getOverSocket, sandboxReady } from './harness.ts';

// An app that fills its disk as a runaway export would, and reads back what it kept.
const filler = `
const fs = require('node:fs');
require('node:http').createServer((req, res) => {
  if (req.url === '/fill') {
    let written = 0;
    try {
      const chunk = require('node:crypto').randomBytes(1024 * 1024);
      const fd = fs.openSync('/data/big.bin', 'w');
      for (let i = 0; i < 64; i++) { fs.writeSync(fd, chunk); written++; }
      fs.closeSync(fd);
      return res.end(JSON.stringify({ written, error: null }));
    } catch (e) {
      return res.end(JSON.stringify({ written, error: e.code }));
    }
  }
  if (req.url === '/mountinfo') return res.end(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  if (req.url === '/read') {
    return res.end(JSON.stringify({
      before: fs.readFileSync('/data/before.txt', 'utf8'),
      big: fs.statSync('/data/big.bin').size,
      owner: fs.statSync('/data/before.txt').uid,
    }));
  }
  res.end('ok');
}).listen(process.env.PORT);
`;

/** Each app's data is a filesystem of its own: its size is the app's quota, and the host's disk is safe. */
describe('app data quota (a filesystem per app)', () => {
  let dir: string;
  let app: SandboxedProcess | null = null;
  const spec = () => ({
    appDir: join(dir, 'code'),
    dataDir: join(dir, 'data', 'filler'),
    socketDir: socketDir,
    entry: 'server.js',
    hostUid: 123_458,
    dataVolume: volumeOf(join(dir, 'data', 'filler'), 16),
    codeImage: `${join(dir, 'code')}.img`,
  });
  /** What the platform does before each start, as root: the code's image and the data volume. */
  const prepare = async () => {
    const s = spec();
    await codeImageOf(s.appDir);
    await prepareVolume(s.dataVolume, s.dataDir, s.hostUid);
    return s;
  };
  // As the platform places it when it runs as root: a random name under a fixed folder.
  const socketDir = join(socketRoot, `test-${randomBytes(6).toString('hex')}`);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-volume-'));
    mkdirSync(join(dir, 'code'));
    writeFileSync(join(dir, 'code', 'server.js'), filler);
    // Data from before quotas existed (or put back by a restore) moves into the volume at the next start.
    mkdirSync(join(dir, 'data', 'filler'), { recursive: true });
    writeFileSync(join(dir, 'data', 'filler', 'before.txt'), 'kept from before');
  });
  after(async () => {
    await app?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(socketDir, { recursive: true, force: true });
  });

  test('an app that fills its disk gets ENOSPC at its quota; its data stays across restarts and archives', async () => {
    app = startSandboxed(await prepare());
    await sandboxReady(app);
    const fill = JSON.parse((await getOverSocket(app.socketPath, '/fill')).body) as {
      written: number;
      error: string | null;
    };
    assert.equal(fill.error, 'ENOSPC', 'the app is told its disk is full');
    assert.ok(fill.written < 16, `it wrote ${fill.written} MB of its 16 MB`);
    assert.deepEqual(
      readdirSync(join(dir, 'data', 'filler')),
      [],
      'the host folder holds nothing: the volume does',
    );
    assert.equal(statSync(`${join(dir, 'data', 'filler')}.img`).size, 16 * 1024 * 1024);
    await app.stop();

    app = startSandboxed(await prepare());
    await sandboxReady(app);
    const read = JSON.parse((await getOverSocket(app.socketPath, '/read')).body) as {
      before: string;
      big: number;
      owner: number;
    };
    assert.equal(read.before, 'kept from before');
    // Its mount table names devices and standard paths, not the host's folders or the platform's layout.
    const mounts = (await getOverSocket(app.socketPath, '/mountinfo')).body;
    assert.ok(!mounts.includes(dir), `the sandbox's mount table shows host paths:\n${mounts}`);
    assert.match(mounts, / \/ \/data /, '/data is the root of a filesystem of its own');
    assert.match(mounts, / \/ \/app /, 'and so is /app');
    assert.ok(read.big > 0, 'what it wrote is still there after a restart');
    await app.stop();
    app = null;

    // Decommissioning archives what the volume holds.
    const kek = kekOf(randomBytes(32));
    const sealed = await sealAppData(
      kek,
      join(dir, 'data', 'filler'),
      join(dir, 'archive.bin'),
      'app_filler',
    );
    const restored = join(dir, 'restored');
    await openArchive([kek], sealed, restored, 'app_filler');
    assert.equal(readFileSync(join(restored, 'before.txt'), 'utf8'), 'kept from before');
    assert.ok(existsSync(join(restored, 'big.bin')));
  });
});
