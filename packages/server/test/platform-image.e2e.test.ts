// The platform's own image (deploy/Containerfile) builds with buildah and runs: ready, its console served,
// as its unprivileged user on a read-only root. No registry is reachable here, so the Node.js image it
// builds FROM is made the way node:20-bookworm-slim is: Debian bookworm (debootstrap, from Debian's mirror)
// with this machine's Node.js and npm in /usr/local. The build context is the repository's files as a
// clean clone has them, and this machine's CAs go in deploy/ca/ as a company would put its own (the npm
// registry is reached through a TLS-inspecting proxy here).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { contained } from './podman.ts';

const root = resolve(import.meta.dirname, '../../..');
const nodeImage = 'localhost/microapp-node-bookworm-test:20';
const image = 'localhost/microapp-platform-test:latest';

const freePort = () =>
  new Promise<number>((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });

describe("the platform's image", () => {
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'microapp-image-'));
    // The base: Debian bookworm with this machine's Node.js, npm and Node's headers in /usr/local.
    const rootfs = join(work, 'rootfs');
    const strapped = spawnSync(
      'debootstrap',
      ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'],
      { encoding: 'utf8' },
    );
    assert.equal(strapped.status, 0, `debootstrap: ${strapped.stderr}`);
    const node = execFileSync('readlink', ['-f', process.execPath], { encoding: 'utf8' }).trim();
    const prefix = dirname(dirname(node));
    for (const dir of ['bin', 'lib/node_modules', 'include'])
      mkdirSync(join(rootfs, 'usr/local', dir), { recursive: true });
    execFileSync('cp', [node, join(rootfs, 'usr/local/bin/node')]);
    execFileSync('cp', [
      '-a',
      join(prefix, 'lib/node_modules/npm'),
      join(rootfs, 'usr/local/lib/node_modules/'),
    ]);
    execFileSync('cp', ['-a', join(prefix, 'include/node'), join(rootfs, 'usr/local/include/')]);
    execFileSync('ln', ['-s', '../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm')]);
    const imported = await contained('sh', [
      '-c',
      `tar -C ${rootfs} -c . | podman import --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' - ${nodeImage} > /dev/null`,
    ]);
    assert.equal(imported.code, 0, imported.stderr);
    rmSync(rootfs, { recursive: true, force: true });

    // The context: the repository's files as a clean clone has them, with this machine's CAs in deploy/ca/.
    const context = join(work, 'context');
    mkdirSync(context);
    execFileSync('sh', [
      '-c',
      `git -C ${root} ls-files -z --cached --others --exclude-standard | (cd ${root} && tar -c --null -T -) | tar -x -C ${context}`,
    ]);
    const bundle = process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt';
    if (existsSync(bundle)) {
      const pems = readFileSync(bundle, 'utf8').match(
        /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
      );
      for (const [i, pem] of (pems ?? []).entries())
        writeFileSync(join(context, 'deploy/ca', `machine-${i}.crt`), `${pem}\n`);
    }
  });

  after(async () => {
    await contained('podman', ['rm', '--force', '--ignore', 'microapp-image-test']);
    await contained('podman', ['volume', 'rm', '--force', 'microapp-image-test-data']);
    await contained('podman', ['rmi', '--force', '--ignore', image, nodeImage]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('builds from deploy/Containerfile and runs: ready, the console served, as user 10001 on a read-only root', async () => {
    const built = await contained(
      'buildah',
      [
        'build',
        '--network',
        'host',
        '--ulimit',
        'nofile=4096:4096',
        '--ulimit',
        'nproc=4096:4096',
        '--build-arg',
        `NODE_IMAGE=${nodeImage}`,
        '--file',
        'deploy/Containerfile',
        '--tag',
        image,
        join(work, 'context'),
      ],
      900_000,
    );
    assert.equal(built.code, 0, `${built.stdout.slice(-3000)}\n${built.stderr.slice(-3000)}`);

    const port = await freePort();
    const idp = await freePort();
    const ran = await contained('podman', [
      'run',
      '--detach',
      '--name',
      'microapp-image-test',
      '--network',
      'host',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--ulimit',
      'nofile=4096:4096',
      '--ulimit',
      'nproc=4096:4096',
      '--volume',
      'microapp-image-test-data:/var/lib/microapp',
      image,
      '--dev',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--dev-idp-port',
      String(idp),
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    let ready: { status: number; body: string } = { status: 0, body: '' };
    for (let i = 0; i < 90 && ready.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      ready = await fetch(`http://127.0.0.1:${port}/readyz`)
        .then(async (r) => ({ status: r.status, body: await r.text() }))
        .catch(() => ({ status: 0, body: '' }));
    }
    const logs = await contained('podman', ['logs', 'microapp-image-test']);
    assert.equal(ready.status, 200, `not ready: ${ready.body}\n${logs.stdout}${logs.stderr}`);
    assert.doesNotMatch(logs.stdout + logs.stderr, /"level":50/, 'no error while it started');
    const consolePage = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(consolePage.status, 200);
    assert.match(await consolePage.text(), /<div id="root">/);
    const inside = await contained('podman', [
      'exec',
      'microapp-image-test',
      'node',
      '-e',
      "const fs=require('fs');console.log(process.getuid());try{fs.writeFileSync('/opt/microapp/x','')}catch(e){console.log(e.code)}",
    ]);
    assert.deepEqual(inside.stdout.trim().split('\n'), ['10001', 'EROFS']);
  });
});
