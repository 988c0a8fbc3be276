// An app like the ones people bring: Fastify and better-sqlite3 (a native module) with their whole
// dependency trees, installed from a registry (a small one on loopback serving the real packages), built
// by the sandboxed pipeline, deployed, used through the gateway, and upgraded with its data kept.
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
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
import { cli, importAdvisories } from './cli-harness.ts';
import { entries, installed, npm, packClosure, startRegistry } from './npm-registry.ts';

const root = resolve(import.meta.dirname, '../../..');
const canSandbox = existsSync('/usr/bin/bwrap');

const serverJs = (version: string) => `import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { identityOf } from './lib/identity.js';

// Notes kept in SQLite on the app's data volume.
const db = new Database(\`\${process.env.MICROAPP_DATA_DIR ?? '.'}/notes.db\`);
db.exec('create table if not exists notes (id integer primary key, body text not null, author text not null)');

const app = Fastify();
app.addHook('onRequest', async (request, reply) => {
  request.user = identityOf(request.raw);
  if (!request.user) return reply.code(401).send({ error: 'sign in through the platform' });
});
app.get('/', async () => ({
  version: '${version}',
  sqlite: db.prepare('select sqlite_version() as v').get().v,
  notes: db.prepare('select body, author from notes order by id').all(),
}));
app.post('/notes', async (request, reply) => {
  db.prepare('insert into notes (body, author) values (?, ?)').run(String(request.body?.body ?? ''), request.user.email);
  return reply.code(201).send({ saved: true });
});
await app.listen({ path: process.env.PORT });
`;

describe('a real app with npm dependencies and a native module', {
  skip: !canSandbox && 'needs bubblewrap',
}, () => {
  let server: TestServer;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  let app: string;
  let env: Record<string, string>;
  let packages = 0;

  before(async () => {
    const packed = await packClosure(['fastify', 'better-sqlite3']);
    packages = packed.length;
    registry = await startRegistry(packed);
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-real-app-'));
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
    app = join(dir, 'ledger-notes');
    mkdirSync(join(app, 'lib'), { recursive: true });
    mkdirSync(join(app, 'test'), { recursive: true });
    copyFileSync(join(root, 'templates/_shared/lib/identity.js'), join(app, 'lib/identity.js'));
    writeFileSync(
      join(app, 'microapp.yaml'),
      'name: ledger-notes\nowner: alice@example.com\npurpose: Notes on ledger entries for the finance team\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\nruntime: { kind: node, entry: server.js }\n',
    );
    writeFileSync(join(app, '.npmrc'), `registry=${registry.url}/\n`);
    writeFileSync(join(app, 'server.js'), serverJs('1.0.0'));
    writeFileSync(
      join(app, 'test/app.test.js'),
      "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport Database from 'better-sqlite3';\n\ntest('SQLite answers', () => {\n  assert.equal(new Database(':memory:').prepare('select 1 as one').get().one, 1);\n});\n",
    );
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify(
        {
          name: 'ledger-notes',
          version: '1.0.0',
          private: true,
          type: 'module',
          scripts: { test: 'node --test' },
          dependencies: { fastify: installed('fastify'), 'better-sqlite3': installed('better-sqlite3') },
        },
        null,
        2,
      ),
    );
    const lock = await npm(
      ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'],
      app,
    );
    assert.equal(lock.code, 0, lock.out);
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const registered = await cli(env, 'register', '-f', join(app, 'microapp.yaml'));
    assert.equal(registered.code, 0, registered.stderr);
  });

  after(async () => {
    await server?.stop();
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the sandboxed pipeline ships the production dependencies, the native module among them', async () => {
    assert.ok(packages >= 50, `a real dependency tree: ${packages} packages`);
    const ci = await cli(env, '--json', 'ci', '--dir', app, '--sandbox', '--work', join(dir, 'work-1'));
    assert.equal(ci.code, 0, ci.stdout + ci.stderr);
    const result = JSON.parse(ci.stdout) as {
      steps: { step: string; detail: string }[];
      artifact: { file: string };
    };
    assert.match(
      result.steps.find((s) => s.step === 'package')!.detail,
      /\d+ production package\(s\) installed/,
    );
    const files = entries(result.artifact.file);
    assert.ok(files.includes('node_modules/fastify/package.json'), 'fastify ships');
    assert.ok(
      files.some((f) => /^node_modules\/better-sqlite3\/build\/Release\/better_sqlite3\.node$/.test(f)),
      'the native module ships',
    );
    assert.ok(!files.some((f) => f.startsWith('data/') || f.startsWith('.microapp/')));
    assert.ok(
      registry.requests.some((r) => r.endsWith('.tgz')),
      'installed from the registry',
    );
  });

  test('it runs behind the gateway, answers from SQLite, and keeps its data across an upgrade', async () => {
    const deployed = await cli(env, 'deploy', 'ledger-notes');
    assert.equal(deployed.code, 0, deployed.stdout + deployed.stderr);
    const dave = await tokenFor(server, 'dave@example.com');
    const auth = { authorization: `Bearer ${dave}` };
    const first = await viaGateway(server, 'ledger-notes', '/', auth);
    assert.equal(first.status, 200, first.body);
    const seen = JSON.parse(first.body) as { version: string; sqlite: string; notes: unknown[] };
    assert.equal(seen.version, '1.0.0');
    assert.match(seen.sqlite, /^3\.\d+/);
    const saved = await viaGateway(
      server,
      'ledger-notes',
      '/notes',
      { ...auth, 'content-type': 'application/json' },
      { method: 'POST', body: JSON.stringify({ body: 'INV-20931 matched' }) },
    );
    assert.equal(saved.status, 201, saved.body);

    // Version 1.0.1: the same data volume.
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ ...pkg, version: '1.0.1' }, null, 2));
    writeFileSync(join(app, 'server.js'), serverJs('1.0.1'));
    const relock = await npm(
      ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'],
      app,
    );
    assert.equal(relock.code, 0, relock.out);
    const ci = await cli(env, 'ci', '--dir', app, '--sandbox', '--work', join(dir, 'work-2'));
    assert.equal(ci.code, 0, ci.stdout + ci.stderr);
    const upgraded = await cli(env, 'deploy', 'ledger-notes');
    assert.equal(upgraded.code, 0, upgraded.stdout + upgraded.stderr);
    const after = await viaGateway(server, 'ledger-notes', '/', auth);
    assert.equal(after.status, 200, after.body);
    const now = JSON.parse(after.body) as { version: string; notes: { body: string; author: string }[] };
    assert.equal(now.version, '1.0.1');
    assert.deepEqual(now.notes, [{ body: 'INV-20931 matched', author: 'dave@example.com' }]);
  });
});

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
    registry = await startRegistry(await packClosure(['semver']), { key: pki.key, cert: pki.cert });
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
    const r = await cli(
      { ...env, MICROAPP_NPM_CA_FILE: ca },
      '--json',
      'ci',
      '--dir',
      app,
      '--sandbox',
      '--work',
      join(dir, 'work-ca'),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const result = JSON.parse(r.stdout) as {
      steps: { step: string; detail: string }[];
      artifact: { file: string };
    };
    assert.match(result.steps.find((s) => s.step === 'package')!.detail, /^1 production package/);
    assert.ok(entries(result.artifact.file).includes('node_modules/semver/package.json'));
    assert.ok(registry.requests.some((p) => p.endsWith('.tgz')));
  });
});
