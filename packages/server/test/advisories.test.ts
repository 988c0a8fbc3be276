import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { zipSync } from 'fflate';
import {
  bankReconciliation,
  call,
  engines,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

const osv = (o: object) => new TextEncoder().encode(JSON.stringify(o));
export const advisoryZip = () =>
  zipSync({
    'GHSA-vuln-0001.json': osv({
      id: 'GHSA-vuln-0001',
      aliases: ['CVE-2026-1111'],
      summary: 'Prototype pollution in vuln-lib',
      affected: [
        {
          package: { ecosystem: 'npm', name: 'vuln-lib' },
          ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.0.5' }] }],
        },
      ],
      database_specific: { severity: 'HIGH' },
    }),
    'CVE-2026-1111.json': osv({
      id: 'CVE-2026-1111',
      aliases: ['GHSA-vuln-0001'],
      affected: [
        {
          package: { ecosystem: 'npm', name: 'vuln-lib' },
          ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.0.5' }] }],
        },
      ],
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N' }],
    }),
    'GHSA-gone-0002.json': osv({
      id: 'GHSA-gone-0002',
      withdrawn: '2026-05-01T00:00:00Z',
      affected: [{ package: { ecosystem: 'npm', name: 'vuln-lib' }, versions: ['1.0.0'] }],
      database_specific: { severity: 'CRITICAL' },
    }),
    'GHSA-low-0003.json': osv({
      id: 'GHSA-low-0003',
      affected: [{ package: { ecosystem: 'npm', name: 'safe-lib' }, versions: ['2.0.0'] }],
      database_specific: { severity: 'LOW' },
    }),
  });

const sbom = (components: [string, string][]) => ({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  components: components.map(([name, version]) => ({
    type: 'library',
    name,
    version,
    purl: `pkg:npm/${name}@${version}`,
  })),
});

for (const engine of engines()) {
  describe(`advisories and scans (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: bankReconciliation({ name: 'recon' }),
      });
    });
    after(() => server.stop());

    const upload = (token: string, body: Uint8Array) =>
      fetch(`${server.url}/api/v1/advisories`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/zip' },
        body,
      });

    test('only admins import; a broken zip is refused; the import is audited with its digest', async () => {
      assert.equal((await upload(t.bob, advisoryZip())).status, 403);
      assert.equal((await upload(t.carol, new TextEncoder().encode('not a zip'))).status, 400);
      const ok = await upload(t.carol, advisoryZip());
      assert.equal(ok.status, 201);
      const snap = (await ok.json()) as { records: number; digest: string };
      assert.equal(snap.records, 4);
      const events = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
      const e = events.body.items.find((x: { action: string }) => x.action === 'advisories.imported');
      assert.equal(e.summary.digest, snap.digest);
    });

    test('a high-tier app fails on a high finding, with ids, package, installed and fixed versions; aliases merged, withdrawn skipped', async () => {
      const res = await call(server, 'POST', '/api/v1/scans', {
        token: t.alice,
        body: {
          app: 'recon',
          sbom: sbom([
            ['vuln-lib', '1.0.0'],
            ['safe-lib', '2.0.0'],
          ]),
        },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.passed, false);
      assert.equal(res.body.tier, 'high');
      assert.deepEqual(
        res.body.blocking.map(
          (f: { ids: string[]; package: string; version: string; fixed: string[]; severity: string }) => [
            f.ids,
            f.package,
            f.version,
            f.fixed,
            f.severity,
          ],
        ),
        [[['GHSA-vuln-0001', 'CVE-2026-1111'], 'vuln-lib', '1.0.0', ['1.0.5'], 'high']],
      );
      assert.equal(
        res.body.findings.length,
        2,
        'the low finding is reported, not blocking; the withdrawn one is not reported',
      );
      const fixed = await call(server, 'POST', '/api/v1/scans', {
        token: t.alice,
        body: { app: 'recon', sbom: sbom([['vuln-lib', '1.0.5']]) },
      });
      assert.equal(fixed.body.passed, true);
      const medium = await call(server, 'POST', '/api/v1/scans', {
        token: t.alice,
        body: { tier: 'medium', sbom: sbom([['vuln-lib', '1.0.0']]) },
      });
      assert.equal(medium.body.passed, true, 'medium tier blocks only critical findings');
    });

    test('an exception from a security reviewer lets it through until it expires; others cannot grant one', async () => {
      const body = {
        advisory: 'CVE-2026-1111',
        package: 'vuln-lib',
        reason: 'the vulnerable function is never called',
        expires: new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10),
      };
      assert.equal(
        (await call(server, 'POST', '/api/v1/apps/recon/scan-exceptions', { token: t.erin, body })).status,
        403,
        'compliance, not security',
      );
      assert.equal(
        (await call(server, 'POST', '/api/v1/apps/recon/scan-exceptions', { token: t.alice, body })).status,
        403,
        'creators cannot',
      );
      assert.equal(
        (
          await call(server, 'POST', '/api/v1/apps/recon/scan-exceptions', {
            token: t.bob,
            body: { ...body, expires: '2020-01-01' },
          })
        ).status,
        400,
      );
      assert.equal(
        (
          await call(server, 'POST', '/api/v1/apps/recon/scan-exceptions', {
            token: t.bob,
            body: { ...body, reason: 'ok' },
          })
        ).status,
        400,
      );
      const granted = await call(server, 'POST', '/api/v1/apps/recon/scan-exceptions', {
        token: t.bob,
        body,
      });
      assert.equal(granted.status, 201, granted.text);
      const res = await call(server, 'POST', '/api/v1/scans', {
        token: t.alice,
        body: { app: 'recon', sbom: sbom([['vuln-lib', '1.0.0']]) },
      });
      assert.equal(res.body.passed, true);
      assert.equal(res.body.findings[0].exception.approvedBy, 'bob@example.com');

      // Expired: the same finding blocks again.
      const raw = server.rawDb();
      try {
        await raw.kysely
          .updateTable('scan_exceptions')
          .set({ expires_at: '2020-01-01T00:00:00.000Z' })
          .execute();
      } finally {
        await raw.destroy();
      }
      const again = await call(server, 'POST', '/api/v1/scans', {
        token: t.alice,
        body: { app: 'recon', sbom: sbom([['vuln-lib', '1.0.0']]) },
      });
      assert.equal(again.body.passed, false);
      const audit = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
      assert.ok(audit.body.items.some((e: { action: string }) => e.action === 'scan.exception_granted'));
    });

    test('scans of apps in other departments are refused like the apps themselves', async () => {
      const res = await call(server, 'POST', '/api/v1/scans', {
        token: t.frank,
        body: { app: 'recon', sbom: sbom([]) },
      });
      assert.equal(res.status, 404);
    });

    test('exceptions: ids are checked against the data (in any case); several at once; listed; revoked; expiry on the platform clock', async () => {
      const later = (days: number) =>
        new Date(server.internals.clock.now().getTime() + days * 86_400_000).toISOString().slice(0, 10);
      const grant = (body: object) =>
        call(server, 'POST', '/api/v1/apps/recon/scan-exceptions', { token: t.bob, body });
      const base = { reason: 'the vulnerable function is never called here', expires: later(30) };
      const unknown = await grant({ ...base, advisory: 'GHSA-nope-0000', package: 'vuln-lib' });
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.detail, /GHSA-nope-0000 is not in the advisory data for vuln-lib/);
      const wrongPackage = await grant({ ...base, advisory: 'GHSA-vuln-0001', package: 'safe-lib' });
      assert.equal(wrongPackage.status, 400, 'the advisory does not affect that package');
      const noneNamed = await grant({ ...base, package: 'vuln-lib' });
      assert.equal(noneNamed.status, 400);
      const before = (await call(server, 'GET', '/api/v1/apps/recon/scan-exceptions', { token: t.alice }))
        .body.items.length;

      // As people type it: lower case. Stored as OSV writes it; one request for two advisories, all packages.
      const both = await grant({ ...base, advisories: ['ghsa-VULN-0001', 'ghsa-low-0003'], package: '*' });
      assert.equal(both.status, 201, both.text);
      assert.deepEqual(
        both.body.items.map((e: { advisory: string; package: string }) => [e.advisory, e.package]),
        [
          ['GHSA-vuln-0001', '*'],
          ['GHSA-low-0003', '*'],
        ],
      );
      const excepted = await call(server, 'POST', '/api/v1/scans', {
        token: t.alice,
        body: {
          app: 'recon',
          sbom: sbom([
            ['vuln-lib', '1.0.0'],
            ['safe-lib', '2.0.0'],
          ]),
        },
      });
      assert.equal(excepted.body.passed, true);
      assert.ok(excepted.body.findings.every((f: { exception: unknown }) => f.exception));

      const listed = await call(server, 'GET', '/api/v1/apps/recon/scan-exceptions', { token: t.alice });
      assert.equal(listed.status, 200);
      assert.equal(listed.body.items.length, before + 2);
      assert.equal(listed.body.items[0].state, 'live');
      const vulnId = both.body.items[0].id;
      assert.equal(
        (await call(server, 'DELETE', `/api/v1/apps/recon/scan-exceptions/${vulnId}`, { token: t.alice }))
          .status,
        403,
        'the owner cannot revoke (nor grant) one',
      );
      assert.equal(
        (await call(server, 'DELETE', '/api/v1/apps/recon/scan-exceptions/exc_nothere', { token: t.bob }))
          .status,
        404,
      );
      const revoked = await call(server, 'DELETE', `/api/v1/apps/recon/scan-exceptions/${vulnId}`, {
        token: t.bob,
      });
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal(revoked.body.state, 'revoked');
      assert.equal(
        (await call(server, 'DELETE', `/api/v1/apps/recon/scan-exceptions/${vulnId}`, { token: t.bob }))
          .status,
        409,
      );
      const blocked = await call(server, 'POST', '/api/v1/scans', {
        token: t.alice,
        body: { app: 'recon', sbom: sbom([['vuln-lib', '1.0.0']]) },
      });
      assert.equal(blocked.body.passed, false, 'revoked: it blocks again');

      // The other one ends when the platform's clock passes its date.
      server.internals.clock.advance(31 * 86_400_000);
      const expired = await call(server, 'POST', '/api/v1/scans', {
        token: t.alice,
        body: { app: 'recon', sbom: sbom([['safe-lib', '2.0.0']]) },
      });
      assert.equal(expired.body.findings[0].exception, null);
      const states = (
        await call(server, 'GET', '/api/v1/apps/recon/scan-exceptions', { token: t.alice })
      ).body.items
        .slice(0, 2)
        .map((e: { state: string }) => e.state)
        .sort();
      assert.deepEqual(states, ['expired', 'revoked']);
      const audit = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
      assert.ok(audit.body.items.some((e: { action: string }) => e.action === 'scan.exception_revoked'));
    });

    const scanOf = async (components: [string, string][]) =>
      (
        await call(server, 'POST', '/api/v1/scans', {
          token: t.alice,
          body: { tier: 'high', sbom: sbom(components) },
        })
      ).body as { findings: { ids: string[]; package: string; severity: string }[] };

    test('importing one updated record keeps every other record and finding; an older copy changes nothing', async () => {
      const before = await scanOf([
        ['vuln-lib', '1.0.0'],
        ['safe-lib', '2.0.0'],
      ]);
      assert.equal(before.findings.length, 2);
      const one = zipSync({
        'GHSA-low-0003.json': osv({
          id: 'GHSA-low-0003',
          modified: '2026-11-01T00:00:00Z',
          affected: [{ package: { ecosystem: 'npm', name: 'safe-lib' }, versions: ['2.0.0'] }],
          database_specific: { severity: 'HIGH' },
        }),
      });
      const merged = await upload(t.carol, one);
      assert.equal(merged.status, 201);
      const report = (await merged.json()) as Record<string, unknown>;
      assert.deepEqual(
        [report.mode, report.records, report.added, report.updated, report.kept],
        ['merge', 4, 0, 1, 3],
      );
      const after = await scanOf([
        ['vuln-lib', '1.0.0'],
        ['safe-lib', '2.0.0'],
      ]);
      assert.deepEqual(
        after.findings.map((f) => [f.package, f.severity]).sort(),
        [
          ['safe-lib', 'high'],
          ['vuln-lib', 'high'],
        ],
        'the vuln-lib finding is still there; safe-lib has its updated severity',
      );
      // The same record as it was in October: older than the one held, so it is kept as it is.
      const stale = zipSync({
        'GHSA-low-0003.json': osv({
          id: 'GHSA-low-0003',
          modified: '2026-10-01T00:00:00Z',
          affected: [{ package: { ecosystem: 'npm', name: 'safe-lib' }, versions: ['2.0.0'] }],
          database_specific: { severity: 'LOW' },
        }),
      });
      const older = (await (await upload(t.carol, stale)).json()) as Record<string, unknown>;
      assert.deepEqual([older.older, older.updated, older.records], [1, 0, 4]);
      const still = await scanOf([['safe-lib', '2.0.0']]);
      assert.equal(still.findings[0]?.severity, 'high');
      const audit = await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan });
      const last = audit.body.items.find((e: { action: string }) => e.action === 'advisories.imported');
      assert.equal(last.summary.mode, 'merge');
    });

    test('a range whose versions are not valid semver is read as OSV reads it; what cannot be read is a warning', async () => {
      // As GHSA-r683's node-fetch range says it: "introduced": "3.0".
      const zip = zipSync({
        'GHSA-r683.json': osv({
          id: 'GHSA-r683-j2x4-v87g',
          affected: [
            {
              package: { ecosystem: 'npm', name: 'node-fetch' },
              ranges: [{ type: 'SEMVER', events: [{ introduced: '3.0' }, { fixed: '3.1.1' }] }],
            },
          ],
          database_specific: { severity: 'HIGH' },
        }),
        'GHSA-odd.json': osv({
          id: 'GHSA-odd',
          affected: [
            {
              package: { ecosystem: 'npm', name: 'odd-lib' },
              ranges: [{ type: 'SEMVER', events: [{ introduced: 'someday' }] }],
            },
          ],
        }),
      });
      const res = await upload(t.carol, zip);
      assert.equal(res.status, 201);
      const report = (await res.json()) as { warnings: string[]; added: number };
      assert.equal(report.added, 2);
      assert.deepEqual(report.warnings, [
        'GHSA-odd: version "someday" is not a version; that bound is ignored',
      ]);
      const hit = await scanOf([['node-fetch', '3.1.0']]);
      assert.deepEqual(
        hit.findings.map((f) => f.ids[0]),
        ['GHSA-r683-j2x4-v87g'],
      );
      assert.equal((await scanOf([['node-fetch', '3.1.1']])).findings.length, 0);
      assert.equal((await scanOf([['node-fetch', '2.6.7']])).findings.length, 0);
    });

    test('--replace makes the upload the whole data; a bad flag is refused and changes nothing', async () => {
      const bad = await fetch(`${server.url}/api/v1/advisories?replace=maybe`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.carol}`, 'content-type': 'application/zip' },
        body: advisoryZip(),
      });
      assert.equal(bad.status, 400);
      assert.equal((await scanOf([['node-fetch', '3.1.0']])).findings.length, 1, 'nothing changed');
      const res = await fetch(`${server.url}/api/v1/advisories?replace=true`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.carol}`, 'content-type': 'application/zip' },
        body: advisoryZip(),
      });
      assert.equal(res.status, 201);
      const report = (await res.json()) as { mode: string; records: number; kept: number };
      assert.deepEqual([report.mode, report.records, report.kept], ['replace', 4, 0]);
      assert.equal((await scanOf([['node-fetch', '3.1.0']])).findings.length, 0, 'dropped');
    });
  });
}
