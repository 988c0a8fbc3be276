import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create } from 'tar';
import {
  buildFinished,
  call,
  lunchPoll,
  nodeApp,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

const manifest = (name: string) =>
  `name: ${name}\nowner: alice@example.com\npurpose: Try to fool the build pipeline\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\n`;

/** A tar.gz of the given files (name → content), as a client would send it. */
async function tarball(dir: string, files: Record<string, string | Buffer>): Promise<Buffer> {
  const root = mkdtempSync(join(dir, 'artifact-'));
  for (const [f, content] of Object.entries(files)) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), content);
  }
  const out = `${root}.tar.gz`;
  await create({ gzip: true, cwd: root, file: out, portable: true }, Object.keys(files));
  const bytes = readFileSync(out);
  rmSync(root, { recursive: true, force: true });
  rmSync(out, { force: true });
  return bytes;
}

/**
 * Attacks on the supply chain by a creator with an ordinary account: tests that plant links for the
 * host-side steps to follow, an SBOM that hides what the artifact ships, a client build passed off as the
 * platform's, and an artifact that expands without bound.
 */
describe('attacks on the build pipeline and what the platform signs', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let dir: string;
  let stop: () => Promise<void>;

  before(async () => {
    ({ server, t, dir, stop } = await startBuildServer());
    for (const name of ['planter', 'hider'])
      assert.equal(
        (
          await call(server, 'POST', '/api/v1/apps', {
            token: t.alice,
            body: lunchPoll({ name, owner: people.alice, purpose: 'Try to fool the build pipeline' }),
          })
        ).status,
        201,
      );
  });
  after(() => stop());

  test('links a test plants in the build folder are not followed by the host-side steps', async () => {
    // On the host, where the sandbox cannot see: a folder with a file the build must never read, and a
    // folder the outputs must never be written into.
    const secretDir = mkdtempSync(join(dir, 'host-secret-'));
    writeFileSync(join(secretDir, 'key.pem'), 'host-only-private-key');
    const outputsDir = mkdtempSync(join(dir, 'host-outputs-'));
    for (const [link, target] of [
      ['leak', secretDir],
      ['.microapp', outputsDir],
      ['up', '../../../../../../..'],
    ] as const) {
      const files: Record<string, string> = nodeApp(
        'planter',
        manifest('planter'),
        "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n",
      );
      // The test passes, and leaves a link behind in the build folder (/build inside the sandbox).
      files['test/plant.test.js'] = `const fs = require('node:fs');
require('node:test')('plants a link', () => {
  fs.rmSync('${link}', { recursive: true, force: true });
  fs.symlinkSync(${JSON.stringify(target)}, '${link}');
});
`;
      const res = await call(server, 'POST', '/api/v1/apps/planter/builds', {
        token: t.alice,
        body: { source: await sourceArchive(files) },
      });
      assert.equal(res.status, 202, res.text);
      const build = await buildFinished(server, 'planter', res.body.id, t.alice);
      if (link === '.microapp') {
        // Outputs never go into the app folder after the tests ran, so this link is simply not used.
        assert.equal(build.state, 'passed', `${link}: ${build.error}`);
      } else {
        assert.equal(build.state, 'failed', `${link}: the build went on`);
        assert.match(build.error ?? '', /the test step failed/);
        assert.match(build.steps.at(-1)!.detail, new RegExp(`cannot be trusted: ${link} is a link to`));
      }
      assert.deepEqual(readdirSync(outputsDir), [], `${link}: nothing was written through the link`);
    }
    // Whatever was published holds nothing from the host.
    const versions = await call(server, 'GET', '/api/v1/apps/planter/versions', { token: t.alice });
    for (const v of versions.body.items as { version: string }[]) {
      const pulled = await fetch(`${server.url}/api/v1/apps/planter/versions/${v.version}/artifact`, {
        headers: { authorization: `Bearer ${t.alice}` },
      });
      assert.equal(pulled.status, 200);
      const { gunzipSync } = await import('node:zlib');
      assert.ok(!gunzipSync(Buffer.from(await pulled.arrayBuffer())).includes('host-only-private-key'));
    }
  });

  test('an SBOM that leaves out a package the artifact ships is refused, not signed', async () => {
    const lockfile = {
      name: 'hider',
      version: '1.0.0',
      lockfileVersion: 3,
      packages: {
        '': { name: 'hider', version: '1.0.0', dependencies: { lodash: '4.17.20' } },
        'node_modules/lodash': { version: '4.17.20', license: 'MIT' },
      },
    };
    const artifact = await tarball(dir, {
      'package.json': JSON.stringify({ name: 'hider', version: '1.0.0' }),
      'package-lock.json': JSON.stringify(lockfile),
      'server.js': 'require("lodash")',
      'node_modules/lodash/package.json': JSON.stringify({ name: 'lodash', version: '4.17.20' }),
      'node_modules/minimist/package.json': JSON.stringify({ name: 'minimist', version: '0.0.8' }),
    });
    const component = (name: string, version: string) => ({
      type: 'library',
      name,
      version,
      purl: `pkg:npm/${name}@${version}`,
    });
    const publish = (components: unknown[], version: string) =>
      call(server, 'POST', '/api/v1/apps/hider/versions', {
        token: t.alice,
        body: {
          version,
          artifact: artifact.toString('base64'),
          sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', components },
        },
      });
    const hidden = await publish([], '1.0.0');
    assert.equal(hidden.status, 400, hidden.text);
    assert.match(
      hidden.body.detail,
      /leaves out 2 package\(s\) the artifact ships: lodash@4\.17\.20, minimist@0\.0\.8/,
    );
    const half = await publish([component('lodash', '4.17.20')], '1.0.0');
    assert.equal(half.status, 400);
    assert.match(half.body.detail, /minimist@0\.0\.8/);
    assert.equal(
      (await call(server, 'GET', '/api/v1/apps/hider/versions', { token: t.alice })).body.items.length,
      0,
      'nothing was signed or stored',
    );
    // Described honestly, it is signed, and the provenance says a client built it, not the platform.
    const honest = await publish([component('lodash', '4.17.20'), component('minimist', '0.0.8')], '1.0.0');
    assert.equal(honest.status, 201, honest.text);
    const provenance = honest.body.provenance as {
      predicate: {
        runDetails: { builder: { id: string } };
        buildDefinition: { internalParameters: { builtBy: string; slsaBuildLevel: number } };
      };
    };
    assert.equal(provenance.predicate.runDetails.builder.id, `${server.url}/builders/client/v1`);
    assert.equal(provenance.predicate.buildDefinition.internalParameters.builtBy, 'client');
    assert.equal(provenance.predicate.buildDefinition.internalParameters.slsaBuildLevel, 1);
  });

  test('a build the platform ran says so in its provenance', async () => {
    const res = await call(server, 'POST', '/api/v1/apps/hider/builds', {
      token: t.alice,
      body: {
        source: await sourceArchive(
          nodeApp(
            'hider',
            manifest('hider'),
            'require("node:http").createServer().listen(process.env.PORT);\n',
            '1.1.0',
          ),
        ),
      },
    });
    const build = await buildFinished(server, 'hider', res.body.id, t.alice);
    assert.equal(build.state, 'passed', build.error ?? '');
    const v = await call(server, 'GET', '/api/v1/apps/hider/versions/1.1.0', { token: t.alice });
    const predicate = v.body.provenance.predicate;
    assert.equal(predicate.runDetails.builder.id, `${server.url}/builders/platform/v1`);
    assert.equal(predicate.buildDefinition.internalParameters.build, res.body.id);
    assert.equal(predicate.runDetails.metadata.invocationId, res.body.id);
  });

  test("an app's pages cannot be framed by other sites, and a sibling's cookie bomb is cleared", async () => {
    const res = await call(server, 'POST', '/api/v1/apps/planter/builds', {
      token: t.alice,
      body: {
        deploy: true,
        source: await sourceArchive(
          nodeApp(
            'planter',
            manifest('planter'),
            "require('node:http').createServer((q, s) => { s.setHeader('content-security-policy', \"default-src 'self'\"); s.end('<p>ok</p>'); }).listen(process.env.PORT);\n",
            '3.0.0',
          ),
        ),
      },
    });
    const build = await buildFinished(server, 'planter', res.body.id, t.alice);
    assert.equal(build.state, 'passed', build.error ?? '');
    const junk = Array.from({ length: 8 }, (_, i) => `bomb${i}=${'x'.repeat(900)}`).join('; ');
    const page = await viaGateway(server, 'planter', '/', {
      authorization: `Bearer ${t.dave}`,
      cookie: junk,
    });
    assert.equal(page.status, 200, page.body);
    // Node's client joins the two policies with a comma; a browser applies both.
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/, "the app's own policy stays");
    assert.match(csp, /frame-ancestors 'self'/);
    assert.equal(page.headers['x-frame-options'], 'SAMEORIGIN');
    const cleared = page.headers['set-cookie'] as string[];
    assert.ok(cleared.includes('bomb0=; Path=/; Domain=apps.localhost; Max-Age=0'), String(cleared));
  });

  test('an artifact that expands like a compression bomb, or holds a link out, is refused before it is stored', async () => {
    const bomb = await tarball(dir, {
      'package.json': JSON.stringify({ name: 'hider', version: '2.0.0' }),
      'zeros.bin': Buffer.alloc(80 * 1024 * 1024),
    });
    assert.ok(bomb.length < 1024 * 1024, 'the bomb is small on the wire');
    const res = await call(server, 'POST', '/api/v1/apps/hider/versions', {
      token: t.alice,
      body: { version: '2.0.0', artifact: bomb.toString('base64'), sbom: { components: [] } },
    });
    assert.equal(res.status, 400, res.text);
    assert.match(res.body.detail, /expands more than 100 times/);

    const root = mkdtempSync(join(dir, 'linked-'));
    writeFileSync(join(root, 'package.json'), '{}');
    const { symlinkSync } = await import('node:fs');
    symlinkSync('/etc/shadow', join(root, 'shadow'));
    await create({ gzip: true, cwd: root, file: `${root}.tar.gz` }, ['package.json', 'shadow']);
    const linked = await call(server, 'POST', '/api/v1/apps/hider/versions', {
      token: t.alice,
      body: {
        version: '2.0.1',
        artifact: readFileSync(`${root}.tar.gz`).toString('base64'),
        sbom: { components: [] },
      },
    });
    assert.equal(linked.status, 400, linked.text);
    assert.match(linked.body.detail, /shadow is a link to \/etc\/shadow, outside the app folder/);
  });
});
