import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cvss3BaseScore } from '../src/modules/advisories/cvss.ts';
import {
  affects,
  fixedVersions,
  type OsvRecord,
  rangeAffects,
  severityOf,
} from '../src/modules/advisories/osv-match.ts';

describe('OSV matching follows the OSV schema', () => {
  test('introduced / fixed / last_affected, in version order', () => {
    const ev: Record<string, string>[] = [
      { introduced: '0' },
      { fixed: '1.2.3' },
      { introduced: '2.0.0' },
      { last_affected: '2.1.0' },
    ];
    const got = Object.fromEntries(
      ['0.1.0', '1.2.2', '1.2.3', '1.9.9', '2.0.0', '2.1.0', '2.1.1'].map((v) => [v, rangeAffects(ev, v)]),
    );
    assert.deepEqual(got, {
      '0.1.0': true,
      '1.2.2': true,
      '1.2.3': false,
      '1.9.9': false,
      '2.0.0': true,
      '2.1.0': true,
      '2.1.1': false,
    });
  });
  test('limit caps the range; events may come in any order', () => {
    assert.equal(rangeAffects([{ limit: '1.5.0' }, { introduced: '1.0.0' }], '1.4.9'), true);
    assert.equal(rangeAffects([{ introduced: '1.0.0' }, { limit: '1.5.0' }], '1.5.0'), false);
    assert.equal(rangeAffects([{ fixed: '3.0.0' }, { introduced: '2.0.0' }], '2.5.0'), true);
  });
  test('prereleases sort before their release', () => {
    assert.equal(rangeAffects([{ introduced: '0' }, { fixed: '2.0.0' }], '2.0.0-rc.1'), true);
  });
  const record: OsvRecord = {
    id: 'GHSA-aaaa-bbbb-cccc',
    aliases: ['CVE-2026-0001'],
    affected: [
      {
        package: { ecosystem: 'npm', name: 'vuln-lib' },
        ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.0.5' }] }],
      },
      { package: { ecosystem: 'npm', name: 'other' }, versions: ['0.3.1'] },
      {
        package: { ecosystem: 'PyPI', name: 'vuln-lib' },
        ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }],
      },
      {
        package: { ecosystem: 'npm', name: 'gitonly' },
        ranges: [{ type: 'GIT', events: [{ introduced: 'abc' }] }],
      },
    ],
  };
  test('ecosystem, package and explicit versions lists', () => {
    assert.equal(affects(record, 'vuln-lib', '1.0.0'), true);
    assert.equal(affects(record, 'vuln-lib', '1.0.5'), false);
    assert.equal(affects(record, 'other', '0.3.1'), true);
    assert.equal(affects(record, 'other', '0.3.2'), false);
    assert.equal(affects(record, 'gitonly', '1.0.0'), false, 'GIT ranges do not apply to npm versions');
    assert.deepEqual(fixedVersions(record, 'vuln-lib'), ['1.0.5']);
  });
  test('withdrawn records affect nothing', () => {
    assert.equal(affects({ ...record, withdrawn: '2026-01-01T00:00:00Z' }, 'vuln-lib', '1.0.0'), false);
  });
  test('severity from the CVSS v3 vector, else the database rating', () => {
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'), 9.8);
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N'), 6.5);
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H'), 9.9);
    assert.deepEqual(
      severityOf({
        id: 'x',
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N' }],
      }),
      { severity: 'medium', score: 6.5 },
    );
    assert.deepEqual(severityOf({ id: 'x', database_specific: { severity: 'HIGH' } }), {
      severity: 'high',
      score: null,
    });
  });
});
