// Apps as people write them: listening on a TCP port, started the way their README says, installed from a
// company mirror behind its own CA. (The tracker template, with Fastify and better-sqlite3, is
// cli-template-tracker.e2e.test.ts.)
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  companyCa,
  startTestServer,
  type TestServer,
  tokenFor,
  viaGateway,
} from '../../server/test/harness.ts';
import { cli, importAdvisories, sandboxedCi } from './cli-harness.ts';
import { entries, installed, npm, packClosure, startRegistry } from './npm-registry.ts';

const _root = resolve(import.meta.dirname, '../../..');
const canSandbox = existsSync('/usr/bin/bwrap');

describe('an app written for a TCP port, with its own arguments, settings and readiness check', {
  skip: !canSandbox && 'needs bubblewrap',
}, () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-tcp-app-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
  });
  after(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('PORT is a number it can listen on; it gets its args and env; it takes traffic once /ready says so', async () => {
    const app = join(dir, 'port-app');
    mkdirSync(join(app, 'test'), { recursive: true });
    const files: Record<string, string> = {
      'microapp.yaml': [
        'name: port-app',
        'owner: alice@example.com',
        'purpose: An app written the way most Node tutorials write them',
        'dataClasses: [internal]',
        'audience: { department: finance, maxUsers: 50 }',
        'runtime:',
        '  kind: node',
        '  entry: server.js',
        '  port: 8080',
        '  args: [--greeting, hello]',
        '  env: { GREETING_STYLE: formal }',
        '  readiness: { path: /ready, timeoutSeconds: 20 }',
        '',
      ].join('\n'),
      'package.json': JSON.stringify({
        name: 'port-app',
        version: '1.0.0',
        private: true,
        scripts: { test: 'node --test' },
      }),
      'package-lock.json': JSON.stringify({
        name: 'port-app',
        version: '1.0.0',
        lockfileVersion: 3,
        packages: { '': { name: 'port-app', version: '1.0.0' } },
      }),
      // Warms up for two seconds, answers /ready with 503 until then, then 200; Number(PORT) as usual.
      'server.js': `const http = require('node:http');
let ready = false;
setTimeout(() => { ready = true; }, 2000);
http.createServer((req, res) => {
  if (req.url === '/ready') { res.statusCode = ready ? 200 : 503; return res.end(); }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ argv: process.argv.slice(2), style: process.env.GREETING_STYLE, port: process.env.PORT, socket: process.env.MICROAPP_SOCKET, readyWhenServed: ready }));
}).listen(Number(process.env.PORT) || 3000, '127.0.0.1');
`,
      'test/ok.test.js': "require('node:test')('ok', () => {});\n",
    };
    for (const [f, text] of Object.entries(files)) writeFileSync(join(app, f), text);
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const registered = await cli(env, 'register', '-f', join(app, 'microapp.yaml'));
    assert.equal(registered.code, 0, registered.stderr);
    const ci = await cli(env, 'ci', '--dir', app);
    assert.equal(ci.code, 0, ci.stdout + ci.stderr);
    const deployed = await cli(env, 'deploy', 'port-app');
    assert.equal(deployed.code, 0, deployed.stdout + deployed.stderr);
    const dave = await tokenFor(server, 'dave@example.com');
    const res = await viaGateway(server, 'port-app', '/', { authorization: `Bearer ${dave}` });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), {
      argv: ['--greeting', 'hello'],
      style: 'formal',
      port: '8080',
      socket: '/run/app/app.sock',
      readyWhenServed: true,
    });
  });

  test('runtime.command: Node options and a file in a folder of its own, as a package.json start script says it', async () => {
    const app = join(dir, 'command-app');
    mkdirSync(join(app, 'dist'), { recursive: true });
    mkdirSync(join(app, 'test'), { recursive: true });
    const files: Record<string, string> = {
      'microapp.yaml': [
        'name: command-app',
        'owner: alice@example.com',
        'purpose: An app started with node options, as its README says',
        'dataClasses: [internal]',
        'audience: { department: finance, maxUsers: 50 }',
        'runtime:',
        '  kind: node',
        '  command: [node, --enable-source-maps, --require=./dist/boot.cjs, dist/main.js, serve]',
        '  args: [--quiet]',
        '',
      ].join('\n'),
      'package.json': JSON.stringify({
        name: 'command-app',
        version: '1.0.0',
        private: true,
        scripts: {
          start: 'node --enable-source-maps --require=./dist/boot.cjs dist/main.js serve',
          test: 'node --test',
        },
      }),
      'package-lock.json': JSON.stringify({
        name: 'command-app',
        version: '1.0.0',
        lockfileVersion: 3,
        packages: { '': { name: 'command-app', version: '1.0.0' } },
      }),
      'dist/boot.cjs': 'globalThis.bootedBy = __filename;\n',
      'dist/main.js': `require('node:http').createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ argv: process.argv.slice(2), sourceMaps: process.execArgv.includes('--enable-source-maps'), bootedBy: globalThis.bootedBy }));
}).listen(process.env.PORT);
`,
      'test/ok.test.js': "require('node:test')('ok', () => {});\n",
    };
    for (const [f, text] of Object.entries(files)) writeFileSync(join(app, f), text);
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const registered = await cli(env, 'register', '-f', join(app, 'microapp.yaml'));
    assert.equal(registered.code, 0, registered.stderr);
    assert.equal((await cli(env, 'ci', '--dir', app)).code, 0);
    const deployed = await cli(env, 'deploy', 'command-app');
    assert.equal(deployed.code, 0, deployed.stdout + deployed.stderr);
    const dave = await tokenFor(server, 'dave@example.com');
    const res = await viaGateway(server, 'command-app', '/', { authorization: `Bearer ${dave}` });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), {
      argv: ['serve', '--quiet'],
      sourceMaps: true,
      bootedBy: '/app/dist/boot.cjs',
    });
  });
});

describe('a registry mirror behind a company CA', { skip: !canSandbox && 'needs bubblewrap' }, () => {
  let server: TestServer;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  let app: string;
  let env: Record<string, string>;
  let ca: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-ca-'));
    const pki = companyCa(dir);
    ca = pki.ca;
    registry = await startRegistry(await packClosure(['semver']), { tls: { key: pki.key, cert: pki.cert } });
    server = await startTestServer('sqlite');
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
    app = join(dir, 'versions');
    mkdirSync(join(app, 'test'), { recursive: true });
    const files: Record<string, string> = {
      'microapp.yaml':
        'name: versions\nowner: alice@example.com\npurpose: Compare the versions the finance tools report\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n',
      '.npmrc': `registry=${registry.url}/\n`,
      'package.json': JSON.stringify({
        name: 'versions',
        version: '1.0.0',
        private: true,
        scripts: { test: 'node --test' },
        dependencies: { semver: installed('semver') },
      }),
      'server.js':
        "const semver = require('semver');\nrequire('node:http').createServer((q, s) => s.end(String(semver.gt('1.2.0', '1.1.9')))).listen(process.env.PORT);\n",
      'test/ok.test.js': "require('node:test')('semver loads', () => require('semver'));\n",
    };
    for (const [f, text] of Object.entries(files)) writeFileSync(join(app, f), text);
    const lock = await npm(
      ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--cafile', ca],
      app,
    );
    assert.equal(lock.code, 0, lock.out);
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    assert.equal((await cli(env, 'register', '-f', join(app, 'microapp.yaml'))).code, 0);
  });
  after(async () => {
    await server?.stop();
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('without the CA the install step fails at once and says which setting is missing', async () => {
    const r = await cli(env, 'ci', '--dir', app, '--sandbox', '--work', join(dir, 'work-no-ca'));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /FAIL install .*presented a certificate this build does not trust \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/,
    );
    assert.match(r.stderr, /set MICROAPP_NPM_CA_FILE to the company CA bundle/);
    assert.ok(
      registry.refusedHandshakes() >= 1 && registry.refusedHandshakes() <= 6,
      `${registry.refusedHandshakes()} handshakes, not thousands`,
    );
  });

  test('with MICROAPP_NPM_CA_FILE both install steps trust the registry and the dependency ships', async () => {
    const { result, artifact } = await sandboxedCi(
      { ...env, MICROAPP_NPM_CA_FILE: ca },
      app,
      join(dir, 'work-ca'),
    );
    assert.match(result.steps.find((s) => s.step === 'package')!.detail, /^1 production package/);
    assert.ok(entries(artifact).includes('node_modules/semver/package.json'));
    assert.ok(registry.requests.some((p) => p.endsWith('.tgz')));
  });
});
