// What a company's builds meet that a laptop's do not: a native module that has to compile inside the
// build sandbox (no network there, so no header download), and a registry mirror that wants a token.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startTestServer, type TestServer } from '../../server/test/harness.ts';
import { cli, importAdvisories, sandboxedCi } from './cli-harness.ts';
import { entries, installed, npm, packClosure, packFolder, startRegistry } from './npm-registry.ts';

const canSandbox = existsSync('/usr/bin/bwrap');

/** A native addon as small as one can be, built by node-gyp from its binding.gyp at install. */
function nativeAddon(dir: string) {
  mkdirSync(join(dir, 'src'), { recursive: true });
  const files: Record<string, string> = {
    'package.json': JSON.stringify({
      name: 'tiny-native',
      version: '1.0.0',
      license: 'MIT',
      main: 'index.js',
      gypfile: true,
      scripts: { install: 'node-gyp rebuild' },
    }),
    'binding.gyp': JSON.stringify({ targets: [{ target_name: 'tiny', sources: ['src/tiny.c'] }] }),
    'src/tiny.c': `#include <node_api.h>
static napi_value Hello(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_create_string_utf8(env, "compiled where it runs", NAPI_AUTO_LENGTH, &out);
  return out;
}
NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "hello", NAPI_AUTO_LENGTH, Hello, NULL, &fn);
  napi_set_named_property(env, exports, "hello", fn);
  return exports;
}
`,
    'index.js': "module.exports = require('./build/Release/tiny.node');\n",
  };
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
}

/** An app folder with `dependencies`, a test that uses them, and a lockfile made against `registry`. */
async function appWith(
  dir: string,
  name: string,
  dependencies: Record<string, string>,
  testJs: string,
  registry: string,
  npmrc = '',
) {
  mkdirSync(join(dir, 'test'), { recursive: true });
  const files: Record<string, string> = {
    'microapp.yaml': `name: ${name}\nowner: alice@example.com\npurpose: Check what the finance tools report\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n`,
    'package.json': JSON.stringify({
      name,
      version: '1.0.0',
      private: true,
      scripts: { test: 'node --test' },
      dependencies,
    }),
    'server.js': "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n",
    'test/app.test.js': testJs,
  };
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  const lock = await npm(
    [
      'install',
      '--package-lock-only',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--registry',
      `${registry}/`,
      ...(npmrc ? ['--userconfig', npmrc] : []),
    ],
    dir,
  );
  assert.equal(lock.code, 0, lock.out);
}

describe('a native module compiles inside the build sandbox', {
  skip: !canSandbox && 'needs bubblewrap',
}, () => {
  let server: TestServer;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  let app: string;
  let env: Record<string, string>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-native-'));
    nativeAddon(join(dir, 'tiny-native'));
    registry = await startRegistry([await packFolder(join(dir, 'tiny-native'))]);
    server = await startTestServer('sqlite');
    env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    await importAdvisories(env, dir);
    app = join(dir, 'native-app');
    await appWith(
      app,
      'native-app',
      { 'tiny-native': '1.0.0' },
      "require('node:test')('the addon answers', () => require('node:assert').equal(require('tiny-native').hello(), 'compiled where it runs'));\n",
      registry.url,
    );
    writeFileSync(join(app, '.npmrc'), `registry=${registry.url}/\n`);
    // The organization allows this package's install script (an admin's policy data).
    await cli(env, 'login', '--dev-user', 'carol@example.com');
    const org = join(dir, 'org');
    mkdirSync(org);
    writeFileSync(
      join(org, 'data.json'),
      JSON.stringify({ microapp: { config: { allowed_install_scripts: ['tiny-native'] } } }),
    );
    writeFileSync(
      join(org, 'native.rego'),
      'package microapp.org.native\n\nimport rego.v1\n\ntest_listed if "tiny-native" in data.microapp.config.allowed_install_scripts\n',
    );
    const pushed = await cli(env, 'policy', 'push', org);
    assert.equal(pushed.code, 0, pushed.stderr);
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const registered = await cli(env, 'register', '-f', join(app, 'microapp.yaml'));
    assert.equal(registered.code, 0, registered.stderr);
  });
  after(async () => {
    await server?.stop();
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("node-gyp finds the platform's Node.js headers without a network, and what it built ships", async () => {
    const { result, artifact } = await sandboxedCi(env, app, join(dir, 'work'), '--no-publish');
    const step = (name: string) => result.steps.find((s) => s.step === name)!;
    assert.match(step('install').detail, /install scripts run for tiny-native \(allowed by policy\)/);
    assert.equal(step('test').status, 'passed', 'the app’s test loaded the compiled addon');
    assert.ok(
      entries(artifact).includes('node_modules/tiny-native/build/Release/tiny.node'),
      'the addon compiled for what ships is in the artifact',
    );
  });
});

describe('a registry that wants a token', { skip: !canSandbox && 'needs bubblewrap' }, () => {
  const token = 'npm_ReadOnly-3c1f9a7e5b2d4c60a8e7f1b2c3d4e5f6';
  let server: TestServer;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  let app: string;
  let env: Record<string, string>;
  let tokenFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-token-'));
    registry = await startRegistry(await packClosure(['semver']), { token });
    tokenFile = join(dir, 'npm-token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const npmrc = join(dir, 'person.npmrc');
    writeFileSync(npmrc, `${registry.url.replace(/^http:/, '')}/:_authToken=${token}\n`);
    server = await startTestServer('sqlite');
    env = {
      MICROAPP_CONFIG_DIR: join(dir, 'config'),
      MICROAPP_SERVER: server.url,
      MICROAPP_NPM_REGISTRY: `${registry.url}/`,
    };
    await importAdvisories(env, dir);
    app = join(dir, 'versions');
    await appWith(
      app,
      'versions',
      { semver: installed('semver') },
      "require('node:test')('semver loads', () => require('semver'));\n",
      registry.url,
      npmrc,
    );
    // The app's own tests, as a hostile author writes them: they look everywhere a registry credential
    // could be and fail the build if they find one (by its prefix: the file ships, the token must not).
    writeFileSync(
      join(app, 'test/steal.test.js'),
      `const fs = require('node:fs');
require('node:test')('no registry credential reaches the app tests', () => {
  const seen = [JSON.stringify(process.env)];
  for (const f of ['/run/microapp/npmrc', \`\${process.env.HOME}/.npmrc\`, '/build/.npmrc', '/usr/etc/npmrc'])
    try { seen.push(fs.readFileSync(f, 'utf8')); } catch {}
  require('node:assert').ok(!/_authToken|npm_ReadOnly-/.test(seen.join('\\n')), 'a registry credential reached the test step');
});
`,
    );
    await cli(env, 'login', '--dev-user', 'alice@example.com');
    const registered = await cli(env, 'register', '-f', join(app, 'microapp.yaml'));
    assert.equal(registered.code, 0, registered.stderr);
  });
  after(async () => {
    await server?.stop();
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ci = (extra: Record<string, string>, work: string) =>
    cli({ ...env, ...extra }, 'ci', '--dir', app, '--sandbox', '--no-publish', '--work', join(dir, work));

  test('without credentials the install step fails at once and names the setting', async () => {
    const before = registry.unauthorized();
    const r = await ci({}, 'work-none');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAIL install .*refused the request \(E401: not signed in\)/);
    assert.match(r.stderr, /sets MICROAPP_NPM_TOKEN_FILE/);
    assert.ok(registry.unauthorized() - before <= 6, 'one refusal is not retried thousands of times');
  });

  test('a token file the build cannot read fails the step and says which file', async () => {
    const r = await ci({ MICROAPP_NPM_TOKEN_FILE: join(dir, 'missing-token') }, 'work-missing');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MICROAPP_NPM_TOKEN_FILE: .*missing-token cannot be read \(ENOENT\)/);
  });

  test('with MICROAPP_NPM_TOKEN_FILE both install steps sign in, and the token is written nowhere', async () => {
    const r = await sandboxedCi(
      { ...env, MICROAPP_NPM_TOKEN_FILE: tokenFile },
      app,
      join(dir, 'work-token'),
      '--no-publish',
    );
    const { result, artifact } = r;
    assert.match(result.steps.find((s) => s.step === 'package')!.detail, /^1 production package/);
    assert.ok(entries(artifact).includes('node_modules/semver/package.json'));
    assert.ok(!(r.stdout + r.stderr).includes(token), 'the token is not in the output');
    assert.ok(!gunzipSync(readFileSync(artifact)).includes(token), 'nor in the artifact');
    assert.ok(!entries(artifact).some((f) => /npmrc/.test(f)), 'no npm config with credentials ships');
  });
});
