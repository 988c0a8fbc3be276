import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { cli } from './cli-harness.ts';

const root = resolve(import.meta.dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'microapp-sbom-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('microapp sbom', () => {
  test('writes the CycloneDX SBOM of a lockfile to standard output, every package with its purl', async () => {
    const r = await cli({}, 'sbom', '-C', root);
    assert.equal(r.code, 0, r.stderr);
    const bom = JSON.parse(r.stdout);
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.equal(bom.specVersion, '1.6');
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    const installed = Object.keys(lock.packages).filter((p) => p.includes('node_modules/'));
    assert.ok(bom.components.length > 400 && bom.components.length <= installed.length);
    assert.ok(bom.components.some((c: { purl: string }) => c.purl.startsWith('pkg:npm/fastify@')));
  });

  test('--out writes a file and --json says what it wrote; --spdx writes SPDX', async () => {
    const out = join(work, 'x.spdx.json');
    const r = await cli({}, '--json', 'sbom', '-C', root, '--spdx', '-o', out);
    assert.equal(r.code, 0, r.stderr);
    const said = JSON.parse(r.stdout);
    assert.equal(said.file, out);
    assert.equal(said.format, 'spdx-2.3');
    assert.equal(JSON.parse(readFileSync(out, 'utf8')).spdxVersion, 'SPDX-2.3');
  });

  test('a folder without a lockfile is refused with what to do', async () => {
    const r = await cli({}, 'sbom', '-C', work);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no package-lock\.json in .*run `npm install` there first/);
  });

  test('--help shows examples', async () => {
    const r = await cli({}, 'sbom', '--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:\n\s+\$ microapp sbom/);
  });
});
