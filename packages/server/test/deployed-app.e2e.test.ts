import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { strToU8, zipSync } from 'fflate';
import { c, t as list } from 'tar';
import { dayMs } from '../src/clock.ts';
import { call, lunchPoll, people, signInEveryone, startTestServer, type TestServer } from './harness.ts';

/** An OSV snapshot as the platform imports it: a zip of OSV JSON records. */
function osvZip(records: object[]): string {
  const files = Object.fromEntries(records.map((r, i) => [`r${i}.json`, strToU8(JSON.stringify(r))]));
  return Buffer.from(zipSync(files)).toString('latin1');
}

async function importOsv(server: TestServer, token: string, records: object[]) {
  const res = await fetch(`${server.url}/api/v1/advisories`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/zip' },
    body: Buffer.from(osvZip(records), 'latin1'),
  });
  assert.equal(res.status, 201, await res.text());
}

describe('a published, deployed app: advisory alerts, scorecard, graduation', () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'microapp-alerts-'));
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a new advisory that affects it reaches its owner within one job run of the import, once, with the fixed version', async () => {
    const t = await signInEveryone(server);
    await importOsv(server, t.carol, [
      {
        id: 'GHSA-old',
        affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['0.0.1'] }],
      },
    ]);
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({ name: 'padded', owner: people.alice, audience: { department: 'finance' } }),
    });
    assert.equal(reg.status, 201, reg.text);

    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(
      join(src, 'package.json'),
      JSON.stringify({ name: 'padded', version: '1.0.0', type: 'module' }),
    );
    writeFileSync(
      join(src, 'server.js'),
      "import { createServer } from 'node:http';\ncreateServer((req, res) => res.end('ok')).listen(process.env.PORT);\n",
    );
    const chunks: Buffer[] = [];
    for await (const chunk of c({ gzip: true, cwd: src, portable: true }, [
      'package.json',
      'server.js',
    ]) as AsyncIterable<Buffer>)
      chunks.push(chunk);
    const sbom = {
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      version: 1,
      components: [{ type: 'library', name: 'left-pad', version: '1.3.0', purl: 'pkg:npm/left-pad@1.3.0' }],
    };
    const pub = await call(server, 'POST', '/api/v1/apps/padded/versions', {
      token: t.alice,
      body: { version: '1.0.0', artifact: Buffer.concat(chunks).toString('base64'), sbom },
    });
    assert.equal(pub.status, 201, pub.text);
    // A rotation between signing and deploying: the retired key still verifies what it signed.
    const rotated = await call(server, 'POST', '/api/v1/keys/rotate', {
      token: t.carol,
      body: { reason: 'rotation drill before the deploy' },
    });
    assert.equal(rotated.status, 200, rotated.text);
    const dep = await call(server, 'POST', '/api/v1/apps/padded/deployments', {
      token: t.alice,
      body: { version: '1.0.0' },
    });
    assert.ok(dep.status < 300, dep.text);

    const healthy = await call(server, 'GET', '/api/v1/apps/padded', { token: t.alice });
    assert.equal(
      healthy.body.scorecard.passed,
      healthy.body.scorecard.total,
      JSON.stringify(healthy.body.scorecard),
    );
    const passing = await call(server, 'GET', '/api/v1/apps?scorecard=passing', { token: t.carol });
    assert.deepEqual(
      passing.body.items.map((a: { name: string }) => a.name),
      ['padded'],
    );

    await server.internals.jobs.trigger('advisory-alerts');
    const quiet = await call(server, 'GET', '/api/v1/notifications', { token: t.alice });
    assert.ok(
      !quiet.body.items.some((n: { kind: string }) => n.kind === 'advisory'),
      'nothing affects it yet',
    );

    await importOsv(server, t.carol, [
      {
        id: 'GHSA-new1-pad0-0001',
        aliases: ['CVE-2026-0001'],
        summary: 'left-pad pads too much',
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
        affected: [
          {
            package: { ecosystem: 'npm', name: 'left-pad' },
            ranges: [{ type: 'SEMVER', events: [{ introduced: '1.0.0' }, { fixed: '1.3.1' }] }],
          },
        ],
      },
    ]);
    // The import started the alert job; waiting for it is waiting for that one run.
    await server.internals.jobs.trigger('advisory-alerts');
    const inbox = await call(server, 'GET', '/api/v1/notifications', { token: t.alice });
    const alerts = inbox.body.items.filter((n: { kind: string }) => n.kind === 'advisory');
    assert.equal(alerts.length, 1, inbox.text);
    assert.match(alerts[0].subject, /padded@1\.0\.0/);
    assert.match(alerts[0].body, /GHSA-new1-pad0-0001 .* in left-pad@1\.3\.0: fixed in 1\.3\.1/);
    const others = await call(server, 'GET', '/api/v1/notifications', { token: t.frank });
    assert.ok(
      !others.body.items.some((n: { kind: string }) => n.kind === 'advisory'),
      'only the owner is told',
    );

    await server.internals.jobs.trigger('advisory-alerts');
    const again = await call(server, 'GET', '/api/v1/notifications', { token: t.alice });
    assert.equal(
      again.body.items.filter((n: { kind: string }) => n.kind === 'advisory').length,
      1,
      'told once',
    );
    const events = await call(server, 'GET', '/api/v1/audit/events?action=advisories.alerted', {
      token: t.ivan,
    });
    assert.equal(events.body.items.length, 1);

    // The catalog's scorecard shows the open finding, and the app now lists among the failing ones.
    const card = (await call(server, 'GET', '/api/v1/apps/padded', { token: t.alice })).body.scorecard;
    const findings = card.checks.find((c: { id: string }) => c.id === 'no_open_high_findings');
    assert.equal(findings.ok, false);
    assert.match(findings.detail, /GHSA-new1-pad0-0001/);
    const failing = await call(server, 'GET', '/api/v1/apps?scorecard=failing', { token: t.carol });
    assert.ok(failing.body.items.some((a: { name: string }) => a.name === 'padded'));
    const nowPassing = await call(server, 'GET', '/api/v1/apps?scorecard=passing', { token: t.carol });
    assert.deepEqual(nowPassing.body.items, []);
  });

  test('graduation: the export bundle holds what a team needs; the new owner is out of micro-app limits', async () => {
    const t = await signInEveryone(server);
    assert.equal(
      (
        await fetch(`${server.url}/api/v1/apps/padded/export`, {
          headers: { authorization: `Bearer ${t.frank}` },
        })
      ).status,
      404,
    );
    assert.equal(
      (
        await fetch(`${server.url}/api/v1/apps/padded/export`, {
          headers: { authorization: `Bearer ${t.bob}` },
        })
      ).status,
      403,
    );
    const res = await fetch(`${server.url}/api/v1/apps/padded/export`, {
      headers: { authorization: `Bearer ${t.ivan}` },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/gzip');
    const file = join(dir, 'export.tar.gz');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const entries: string[] = [];
    await list({ file, onReadEntry: (e) => entries.push(e.path) });
    for (const expected of [
      'padded/manifest.json',
      'padded/data-classification.json',
      'padded/access-policy.json',
      'padded/sbom.cdx.json',
      'padded/source/padded-1.0.0.tar.gz',
      'padded/attestations/artifact.sigstore.json',
      'padded/attestations/provenance.sigstore.json',
      'padded/audit.jsonl',
      // The app's repository with its history, which the team clones into its own host.
      'padded/repository.bundle',
      'padded/HARDENING.md',
      'padded/README.md',
    ])
      assert.ok(entries.includes(expected), `${expected} in ${entries.join(', ')}`);

    const body = { team: 'payments-eng', owner: people.dave };
    assert.equal(
      (await call(server, 'POST', '/api/v1/apps/padded/graduation', { token: t.alice, body })).status,
      403,
    );
    assert.equal(
      (
        await call(server, 'POST', '/api/v1/apps/padded/graduation', {
          token: t.carol,
          body: { ...body, team: '../x' },
        })
      ).status,
      400,
    );
    const done = await call(server, 'POST', '/api/v1/apps/padded/graduation', { token: t.carol, body });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.owner, people.dave);
    server.internals.clock.advance(400 * dayMs);
    await server.internals.jobs.runDue();
    const life = await call(server, 'GET', '/api/v1/apps/padded/lifecycle', { token: t.dave });
    assert.equal(life.body.stage, 'active', 'neither idle nor expired after 400 days: it is the team’s now');
    assert.equal(life.body.graduatedTo, 'payments-eng');
    const again = await call(server, 'POST', '/api/v1/apps/padded/graduation', { token: t.carol, body });
    assert.equal(again.status, 409);
  });
});
