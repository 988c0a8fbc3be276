import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  call,
  lunchPoll,
  people,
  startTestServer,
  type TestServer,
  tokenFor,
} from '../../server/test/harness.ts';
import { cli } from './cli-harness.ts';

describe('microapp server backup and restore', () => {
  let server: TestServer;
  let work: string;
  // The operator's shell: no database URL, no single sign-on, so the data folder's own SQLite and KEK.
  const env = { DATABASE_URL: '', MICROAPP_OIDC_ISSUER: '', MICROAPP_KEK: '', MICROAPP_KEK_FILE: '' };
  before(async () => {
    server = await startTestServer('sqlite');
    work = mkdtempSync(join(tmpdir(), 'microapp-cli-backup-'));
    const token = await tokenFor(server, people.dave);
    const reg = await call(server, 'POST', '/api/v1/apps', { token, body: lunchPoll() });
    assert.equal(reg.status, 201, reg.text);
    // The platform's signing key, as its first signature makes it: what a restore checks the KEK against.
    assert.equal((await call(server, 'GET', '/api/v1/keys/signing.pub')).status, 200);
  });
  after(async () => {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test('backs up a serving platform and restores it elsewhere, refusing the wrong KEK', async () => {
    const file = join(work, 'microapp.tar.gz');
    const backup = await cli(env, '--json', 'server', 'backup', '--data-dir', server.dataDir, '--out', file);
    assert.equal(backup.code, 0, backup.stderr + backup.stdout);
    const report = JSON.parse(backup.stdout);
    assert.equal(report.file, file);
    assert.ok(report.rows > 10 && report.repositories === 1, backup.stdout);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'readable by its owner only');

    const target = join(work, 'restored');
    const wrong = await cli(env, 'server', 'restore', file, '--data-dir', target);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(
      wrong.stderr,
      /does not open the signing key in this backup: give the KEK of the platform that made it; nothing was restored/,
    );

    // The operator brings the KEK (here the dev KEK file) to an empty data folder.
    const restoredDir = join(work, 'restored-2');
    mkdirSync(restoredDir, { recursive: true });
    copyFileSync(join(server.dataDir, 'kek'), join(restoredDir, 'kek'));
    const restore = await cli(env, '--json', 'server', 'restore', file, '--data-dir', restoredDir);
    assert.equal(restore.code, 0, restore.stderr + restore.stdout);
    assert.equal(JSON.parse(restore.stdout).rows, report.rows);
    assert.equal(JSON.parse(restore.stdout).kekChecked, true);
    assert.ok(readdirSync(join(restoredDir, 'repos')).some((r) => r.endsWith('.git')));

    // A server set up for single sign-on migrates with its own settings (it used to be refused as --dev).
    const sso = {
      DATABASE_URL: `sqlite:${join(work, 'sso.sqlite')}`,
      MICROAPP_OIDC_ISSUER: 'https://login.example.com',
      MICROAPP_OIDC_CLIENT_ID: 'microapp',
      MICROAPP_OIDC_CLIENT_SECRET: 'client-secret',
      MICROAPP_OIDC_GROUP_ROLES: '{"finance-builders":{"roles":["creator"]}}',
      MICROAPP_KEK: Buffer.alloc(32, 5).toString('base64'),
    };
    const migrated = await cli(sso, 'server', 'migrate');
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stdout, /^applied: 0001/);

    const help = await cli(env, 'server', 'backup', '--help');
    assert.match(
      help.stdout,
      /Examples:\n\s+\$ DATABASE_URL=postgres:\/\/db\.internal\/microapp microapp server backup --out/,
    );
  });
});
