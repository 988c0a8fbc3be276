import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildArtifact } from '../src/pipeline/artifact.ts';
import { checkLicenses } from '../src/pipeline/licenses.ts';
import { remedies } from '../src/pipeline/remediation.ts';
import { buildSbom, readLockfile, validateSbom } from '../src/pipeline/sbom.ts';
import { cyclonedxToSpdx } from '../src/pipeline/spdx.ts';

const sri = (s: string) => `sha512-${createHash('sha512').update(s).digest('base64')}`;

// A lockfile like npm 10 writes, with a scoped package, a nested duplicate and a dev dependency.
const lock = {
  name: 'recon',
  version: '1.2.0',
  lockfileVersion: 3,
  requires: true,
  packages: {
    '': {
      name: 'recon',
      version: '1.2.0',
      dependencies: { a: '^1.0.0', '@corp/b': '^2.0.0' },
      devDependencies: { t: '^3.0.0' },
    },
    'node_modules/a': {
      version: '1.0.0',
      integrity: sri('a'),
      license: 'MIT',
      dependencies: { c: '^1.0.0' },
    },
    'node_modules/@corp/b': {
      version: '2.1.0',
      integrity: sri('b'),
      license: '(MIT OR GPL-3.0-only)',
      dependencies: { c: '^2.0.0' },
    },
    'node_modules/c': { version: '1.0.0', integrity: sri('c1'), license: 'ISC' },
    'node_modules/@corp/b/node_modules/c': {
      version: '2.0.0',
      integrity: sri('c2'),
      license: 'GPL-3.0-only',
    },
    'node_modules/t': { version: '3.0.0', integrity: sri('t'), license: 'MIT', dev: true },
  },
};

describe("the pipeline's local steps", () => {
  let dir: string;
  let out: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-pipeline-'));
    out = mkdtempSync(join(tmpdir(), 'microapp-artifacts-'));
    writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'recon', version: '1.2.0' }));
    writeFileSync(join(dir, 'server.js'), 'console.log(1)\n');
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  test("the lockfile is read with Node's resolution: nested copies are their own packages", () => {
    const l = readLockfile(dir);
    assert.deepEqual(l.packages.map((p) => p.purl).sort(), [
      'pkg:npm/%40corp/b@2.1.0',
      'pkg:npm/a@1.0.0',
      'pkg:npm/c@1.0.0',
      'pkg:npm/c@2.0.0',
      'pkg:npm/t@3.0.0',
    ]);
    assert.deepEqual(
      [...l.edges.get('pkg:npm/%40corp/b@2.1.0')!],
      ['pkg:npm/c@2.0.0'],
      'b uses its own nested c',
    );
    assert.deepEqual([...l.edges.get('pkg:npm/a@1.0.0')!], ['pkg:npm/c@1.0.0']);
    assert.deepEqual([...l.edges.get('root')!].sort(), [
      'pkg:npm/%40corp/b@2.1.0',
      'pkg:npm/a@1.0.0',
      'pkg:npm/t@3.0.0',
    ]);
  });

  test('the SBOM is valid CycloneDX 1.6 with every package once, its SHA-512 and the graph', async () => {
    const { json } = await buildSbom(dir);
    assert.equal(await validateSbom(json), null, 'CycloneDX 1.6 strict schema');
    const bom = JSON.parse(json);
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.equal(bom.specVersion, '1.6');
    assert.equal(bom.components.length, 5);
    const a = bom.components.find((c: { purl: string }) => c.purl === 'pkg:npm/a@1.0.0');
    assert.deepEqual(a.hashes, [{ alg: 'SHA-512', content: createHash('sha512').update('a').digest('hex') }]);
    assert.deepEqual(a.licenses, [{ license: { id: 'MIT' } }]);
    const b = bom.components.find((c: { purl: string }) => c.purl === 'pkg:npm/%40corp/b@2.1.0');
    assert.equal(b.group, '@corp');
    assert.deepEqual(b.licenses, [{ expression: '(MIT OR GPL-3.0-only)' }]);
    const dep = bom.dependencies.find((d: { ref: string }) => d.ref === 'pkg:npm/%40corp/b@2.1.0');
    assert.deepEqual(dep.dependsOn, ['pkg:npm/c@2.0.0']);
    assert.equal((await buildSbom(dir)).json, json, 'the same lockfile gives the same SBOM');
  });

  test('SPDX 2.3 export: every package with its purl and checksum, and the graph', async () => {
    const spdx = cyclonedxToSpdx(JSON.parse((await buildSbom(dir)).json));
    assert.equal(spdx.spdxVersion, 'SPDX-2.3');
    assert.equal(spdx.packages.length, 6, 'the app and five packages');
    const b = spdx.packages.find((p) => p.name === '@corp/b')!;
    assert.equal(b.licenseDeclared, '(MIT OR GPL-3.0-only)');
    assert.deepEqual(b.externalRefs, [
      {
        referenceCategory: 'PACKAGE-MANAGER',
        referenceType: 'purl',
        referenceLocator: 'pkg:npm/%40corp/b@2.1.0',
      },
    ]);
    assert.equal(b.checksums?.[0]?.algorithm, 'SHA512');
    assert.ok(spdx.relationships.some((r) => r.relationshipType === 'DESCRIBES'));
    assert.ok(
      spdx.relationships.some((r) => r.relationshipType === 'DEPENDS_ON' && r.spdxElementId === b.SPDXID),
    );
  });

  test('licenses: an OR with an allowed branch passes; GPL is refused for high-tier apps only', () => {
    const { packages } = readLockfile(dir);
    const high = checkLicenses(packages, 'high');
    assert.deepEqual(
      high.blocking.map((f) => `${f.package}@${f.version}`),
      ['c@2.0.0'],
    );
    const low = checkLicenses(packages, 'low');
    assert.deepEqual(low.blocking, []);
    assert.deepEqual(
      low.findings.map((f) => f.problem),
      ['not on the allow list: needs review'],
    );
  });

  test('the artifact is byte-identical when built twice, and changes when a file does', async () => {
    const first = await buildArtifact(dir, join(out, 'a.tgz'));
    const second = await buildArtifact(dir, join(out, 'b.tgz'));
    assert.equal(first.digest, second.digest);
    writeFileSync(join(dir, 'server.js'), 'console.log(2)\n');
    const third = await buildArtifact(dir, join(out, 'c.tgz'));
    assert.notEqual(third.digest, first.digest);
  });
});

describe('what the installed tree adds to the SBOM, and remedies that work', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-installed-'));
    // A lockfile without license fields (as some registries write it), a peer, a macOS-only optional
    // binary that is not installed here, and a development package.
    const l = {
      name: 'app',
      version: '1.0.0',
      lockfileVersion: 3,
      packages: {
        '': {
          name: 'app',
          version: '1.0.0',
          dependencies: { web: '^1.0.0' },
          devDependencies: { jest: '^1.0.0' },
        },
        'node_modules/web': {
          version: '1.0.0',
          dependencies: { parser: '^2.0.0' },
          peerDependencies: { react: '*' },
          optionalDependencies: { 'web-darwin-arm64': '1.0.0' },
        },
        'node_modules/parser': { version: '2.0.0' },
        'node_modules/react': { version: '18.0.0', peer: true },
        'node_modules/web-darwin-arm64': { version: '1.0.0', optional: true, os: ['darwin'], cpu: ['arm64'] },
        'node_modules/jest': { version: '1.0.0', dev: true },
      },
    };
    writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(l));
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'app',
        version: '1.0.0',
        dependencies: { web: '^1.0.0' },
        devDependencies: { jest: '^1.0.0' },
      }),
    );
    const installed: Record<string, object> = {
      web: { name: 'web', version: '1.0.0', license: 'MIT' },
      parser: { name: 'parser', version: '2.0.0', license: { type: 'ISC' } },
      react: { name: 'react', version: '18.0.0', licenses: [{ type: 'MIT' }] },
      jest: { name: 'jest', version: '1.0.0', license: 'MIT' },
    };
    for (const [name, pkg] of Object.entries(installed)) {
      mkdirSync(join(dir, 'node_modules', name), { recursive: true });
      writeFileSync(join(dir, 'node_modules', name, 'package.json'), JSON.stringify(pkg));
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('licenses come from the installed packages, the absent optional binary is left out, peers are edges, dev is excluded', async () => {
    const { json } = await buildSbom(dir, { installed: [dir] });
    assert.equal(await validateSbom(json), null, 'CycloneDX 1.6 strict schema');
    const bom = JSON.parse(json) as {
      components: { name: string; scope: string; licenses?: { license?: { id: string } }[] }[];
      dependencies: { ref: string; dependsOn?: string[] }[];
    };
    assert.deepEqual(
      bom.components.map((c) => [c.name, c.licenses?.[0]?.license?.id ?? null, c.scope]).sort(),
      [
        ['jest', 'MIT', 'excluded'],
        ['parser', 'ISC', 'required'],
        ['react', 'MIT', 'required'],
        ['web', 'MIT', 'required'],
      ],
    );
    assert.deepEqual(bom.dependencies.find((d) => d.ref === 'pkg:npm/web@1.0.0')?.dependsOn, [
      'pkg:npm/parser@2.0.0',
      'pkg:npm/react@18.0.0',
    ]);
    // From the lockfile alone (nothing installed), every entry is listed and no license is known.
    const bare = JSON.parse((await buildSbom(dir)).json) as { components: { name: string }[] };
    assert.equal(bare.components.length, 5);
  });

  test('a transitive package is pinned with overrides or its direct dependency upgraded; a direct one with npm install', () => {
    assert.deepEqual(
      remedies(dir, [
        { package: 'parser', version: '2.0.0', fixed: ['2.0.1'] },
        { package: 'web', version: '1.0.0', fixed: ['1.2.0', '2.0.0'] },
        { package: 'react', version: '18.0.0', fixed: [] },
      ]),
      [
        'parser comes with web: upgrade web to a release that needs parser 2.0.1 or later, or pin it: add "overrides": { "parser": "2.0.1" } to package.json and run npm install',
        'npm install web@1.2.0',
        'react@18.0.0 has no fixed version yet: replace it, or ask a security reviewer for a time-limited exception',
      ],
    );
  });
});

// The pipeline writes SBOMs without validating them (two thirds of its time); the generator is held to the
// strict schema here instead, on every template's lockfile and on this repository's installed tree.
describe('every SBOM the generator writes is valid CycloneDX 1.6', () => {
  const root = join(import.meta.dirname, '../../..');
  for (const template of ['connector', 'dashboard', 'finance-reconciliation', 'form', 'tracker'])
    test(`the ${template} template`, async () => {
      const { json, packages } = await buildSbom(join(root, 'templates', template));
      assert.equal(await validateSbom(json), null);
      assert.equal(JSON.parse(json).components.length, packages.length);
    });

  test("this repository's installed tree (hundreds of packages, licenses read from them)", async () => {
    const { json, packages } = await buildSbom(root, { installed: [root] });
    assert.ok(packages.length > 400, `${packages.length} packages`);
    assert.equal(await validateSbom(json), null);
  });

  test('a document that breaks the schema is named', async () => {
    const { json } = await buildSbom(join(root, 'templates', 'form'));
    const bom = JSON.parse(json);
    bom.components = [{ type: 'not-a-type', name: 'x' }];
    assert.match((await validateSbom(JSON.stringify(bom))) ?? 'valid', /type|enum/);
  });
});
