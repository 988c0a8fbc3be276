// The platform's own image (deploy/Containerfile) builds with buildah and runs: ready, its console served,
// as its unprivileged user on a read-only root; inside it, the platform builds and runs a real app (npm
// dependencies and a native module) from the company's npm mirror under the company's CA; and a container
// whose /proc is masked is not ready and says what to change. No registry is reachable here, so the
// Node.js image it builds FROM is made the way node:20-bookworm-slim is: Debian bookworm (debootstrap, from
// Debian's mirror) with this machine's Node.js and npm in /usr/local. The build context is the repository's
// files as a clean clone has them; this machine's CAs (the npm registry is reached through a TLS-inspecting
// proxy here) and the test's company CA go in deploy/ca/ as a company would put its own.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { packClosure, startRegistry } from '../../cli/test/npm-registry.ts';
import {
  buildFinished,
  call,
  companyCa,
  people,
  sourceArchive,
  type TestServer,
  tokenFor,
  viaGateway,
} from './harness.ts';
import { contained } from './podman.ts';
import { trackerFromMirror } from './tracker-source.ts';

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

/** Runs the platform's image as a container of its own: the flags a cluster would give it, and `extra`. */
async function runPlatform(name: string, port: number, idp: number, extra: string[]) {
  return contained('podman', [
    'run',
    '--detach',
    '--name',
    name,
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
    `${name}-data:/var/lib/microapp`,
    ...extra,
    image,
    '--dev',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--dev-idp-port',
    String(idp),
  ]);
}

/** `/readyz` once `until` holds for its answer (or after 90 s). */
async function readiness(port: number, until: (answer: { status: number; body: string }) => boolean) {
  let ready: { status: number; body: string } = { status: 0, body: '' };
  for (let i = 0; i < 90 && !until(ready); i++) {
    await new Promise((r) => setTimeout(r, 1000));
    ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      .then(async (r) => ({ status: r.status, body: await r.text() }))
      .catch(() => ({ status: 0, body: '' }));
  }
  return ready;
}

/** A failure with the platform container's last log lines, where its reason is. */
function explained(what: string) {
  return async (error: Error): Promise<never> => {
    const logs = await contained('podman', ['logs', '--tail', '40', 'microapp-image-test']);
    throw new Error(`${what}: ${error.message}\n${logs.stdout}${logs.stderr}`);
  };
}

describe("the platform's image", () => {
  let work: string;
  let mirror: Awaited<ReturnType<typeof startRegistry>>;
  let ca: ReturnType<typeof companyCa>;
  let platform: TestServer;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'microapp-image-'));
    // The company's npm mirror, behind the company's CA: fastify and better-sqlite3 with their whole trees,
    // better-sqlite3 as npm has it (its sources and install script, no binary): the build compiles it.
    ca = companyCa(work);
    mirror = await startRegistry(
      await packClosure(['fastify', 'better-sqlite3'], { compile: ['better-sqlite3'] }),
      {
        tls: { key: ca.key, cert: ca.cert },
        urlHost: 'localhost',
      },
    );
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
    writeFileSync(join(context, 'deploy/ca', 'example-bank.crt'), readFileSync(ca.ca));
  });

  after(async () => {
    for (const name of ['microapp-image-test', 'microapp-image-masked']) {
      await contained('podman', ['rm', '--force', '--ignore', name]);
      await contained('podman', ['volume', 'rm', '--force', `${name}-data`]);
    }
    await mirror?.close();
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
    // Builds and apps run in bubblewrap sandboxes inside the container, which make namespaces, set their
    // host name and mount a /proc of their own: as deploy/kubernetes/deployment.yaml has it, the seccomp
    // profile is Unconfined and /proc is unmasked (procMount: Unmasked).
    const ran = await runPlatform('microapp-image-test', port, idp, [
      '--security-opt',
      'seccomp=unconfined',
      '--security-opt',
      'unmask=/proc/*',
      '--env',
      `MICROAPP_NPM_REGISTRY=${mirror.url}/`,
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    const ready = await readiness(port, (r) => r.status === 200);
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
    platform = { url: `http://127.0.0.1:${port}` } as TestServer;
  });

  test('inside it, the platform builds and runs an app with npm dependencies and a native module it compiles, from the company mirror under its CA', async () => {
    assert.ok(platform, 'the container runs (the test above)');
    const signedIn: string[] = [];
    for (const who of [people.alice, people.bob, people.carol, people.dave])
      signedIn.push(await tokenFor(platform, who).catch(explained('sign-in')));
    const [alice, bob, carol, dave] = signedIn as [string, string, string, string];
    // Scans need an advisory snapshot.
    const { zipSync } = await import('fflate');
    const advisory = {
      id: 'GHSA-x',
      affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['0.0.1'] }],
    };
    const imported = await fetch(`${platform.url}/api/v1/advisories`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/zip' },
      body: zipSync({ 'GHSA-x.json': Buffer.from(JSON.stringify(advisory)) }),
    });
    assert.ok(imported.ok, await imported.text());
    // The tracker as its developer has it: made from the template, locked against the company mirror.
    const name = 'image-tracker';
    const files = await trackerFromMirror(work, name, { url: mirror.url, caFile: ca.ca });
    const reg = await call(platform, 'POST', '/api/v1/apps', {
      token: alice,
      body: parse(files['microapp.yaml']!),
    });
    assert.equal(reg.status, 201, reg.text);
    if (reg.body.app.state !== 'approved') {
      const review = await call(platform, 'POST', `/api/v1/apps/${name}/reviews`, {
        token: bob,
        body: { decision: 'approve' },
      });
      assert.equal(review.status, 200, review.text);
    }
    const started = await call(platform, 'POST', `/api/v1/apps/${name}/builds`, {
      token: alice,
      body: { source: await sourceArchive(files), deploy: true },
    });
    assert.equal(started.status, 202, started.text);
    const build = await buildFinished(platform, name, started.body.id, alice).catch(explained('the build'));
    assert.equal(build.state, 'passed', JSON.stringify(build.steps, null, 2));
    // better-sqlite3 compiled in the build sandbox, inside the container (the mirror has no binary of it).
    assert.match(
      build.steps.find((s) => s.step === 'install')?.detail ?? '',
      /install scripts run for better-sqlite3/,
    );
    assert.ok(
      mirror.requests.some((r) => r.includes('better-sqlite3') && r.endsWith('.tgz')),
      'installed from the mirror',
    );
    // The app answers through the gateway, in its sandbox in the container, and keeps what it is given.
    const added = await viaGateway(
      platform,
      name,
      '/items',
      { authorization: `Bearer ${dave}`, accept: 'application/json', 'content-type': 'application/json' },
      { method: 'POST', body: JSON.stringify({ title: 'Check the Q3 accruals' }) },
    );
    assert.equal(added.status, 201, added.body);
    const page = await viaGateway(platform, name, '/', { authorization: `Bearer ${dave}` });
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /Check the Q3 accruals/);
  });

  test('a container whose /proc is masked is not ready, and says what to change', async () => {
    const port = await freePort();
    const idp = await freePort();
    const ran = await runPlatform('microapp-image-masked', port, idp, [
      '--security-opt',
      'seccomp=unconfined',
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    const ready = await readiness(port, (r) => r.status === 200 || /bubblewrap/.test(r.body));
    assert.equal(ready.status, 503, ready.body);
    assert.match(ready.body, /no build or app can run on this replica: bubblewrap cannot mount a \/proc/);
    assert.match(ready.body, /procMount: Unmasked/);
    assert.match(ready.body, /--security-opt unmask=\/proc\/\*/);
    const logs = await contained('podman', ['logs', 'microapp-image-masked']);
    assert.match(logs.stdout + logs.stderr, /no build or app can run on this replica/);
  });
});
