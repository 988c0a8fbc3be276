// Backup and restore: a backup taken while the platform serves, the platform wiped, restored into a new
// database and data folder, and then the audit chain verifies and a signed version deploys again.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { adjustableClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { type Db, openDatabase } from '../src/db/database.ts';
import { RestoreError, restoreBackup } from '../src/modules/backup/backup-restore.ts';
import { writeBackup } from '../src/modules/backup/backup-write.ts';
import { createFolderBlobStore } from '../src/modules/blobs/blob-store.ts';
import { createOciBlobStore } from '../src/modules/blobs/oci-blob-store.ts';
import { createRepoStore } from '../src/modules/repos/repo-store.ts';
import { createSharedRepoStore } from '../src/modules/repos/shared-repos.ts';
import { loadKek } from '../src/modules/signing/key-store.ts';
import { startServer } from '../src/server.ts';
import { version } from '../src/version.ts';
import {
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  sourceArchive,
  startTestServer,
  viaGateway,
} from './harness.ts';
import { referrersOf, startRegistry, type TestRegistry } from './oci-registry.ts';
import { importEmptySnapshot, pollApp } from './replica-helpers.ts';

async function freshDatabase(
  engine: 'sqlite' | 'postgres',
  dataDir: string,
): Promise<{ db: Db; drop(): Promise<void> }> {
  if (engine === 'sqlite')
    return {
      db: openDatabase({ kind: 'sqlite', file: join(dataDir, 'microapp.sqlite') }),
      drop: async () => {},
    };
  const schema = `t_${Math.random().toString(36).slice(2, 12)}`;
  const url = process.env.MICROAPP_TEST_POSTGRES_URL!;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`create schema ${schema}`);
  await client.end();
  return {
    db: openDatabase({ kind: 'postgres', url, schema, poolSize: 3 }),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    },
  };
}

for (const engine of engines())
  describe(`backup and restore (${engine})`, () => {
    test('a backup taken while serving restores a platform whose chain verifies and whose versions deploy', async () => {
      const a = await startTestServer(engine);
      const work = mkdtempSync(join(tmpdir(), 'microapp-backup-'));
      const file = join(work, 'microapp.tar.gz');
      const t = await signInEveryone(a);
      await importEmptySnapshot(a, t.carol);
      const reg = await call(a, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'kept-poll', owner: people.dave, audience: { department: 'finance' } }),
      });
      assert.equal(reg.status, 201, reg.text);
      const artifact = await sourceArchive({
        'package.json': JSON.stringify({ name: 'kept-poll', version: '1.0.0' }),
        'server.js':
          "require('node:http').createServer((q, s) => s.end('still here')).listen(process.env.PORT);\n",
      });
      const pub = await call(a, 'POST', '/api/v1/apps/kept-poll/versions', {
        token: t.dave,
        body: {
          version: '1.0.0',
          artifact,
          sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] },
        },
      });
      assert.equal(pub.status, 201, pub.text);

      // A decommissioned app: its data sealed in an archive, in the blob store.
      const retired = await call(a, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'retired-poll', owner: people.dave, audience: { department: 'finance' } }),
      });
      assert.equal(retired.status, 201, retired.text);
      const gone = await call(a, 'POST', '/api/v1/apps/retired-poll/decommission', {
        token: t.dave,
        body: { reason: 'the team lunch moved to Thursdays' },
      });
      assert.equal(gone.status, 200, gone.text);

      // While it serves: the backup, with the server writing beside it.
      const live = a.rawDb();
      const [report] = await Promise.all([
        writeBackup({
          db: live,
          blobs: createFolderBlobStore(a.dataDir),
          dataDir: a.dataDir,
          out: file,
          version,
        }),
        call(a, 'POST', '/api/v1/apps', {
          token: t.dave,
          body: lunchPoll({ name: 'during-backup', owner: people.dave }),
        }),
      ]);
      await live.destroy();
      assert.equal(report.artifacts, 1);
      assert.equal(report.archives, 1);
      assert.ok(report.repositories >= 1, 'the app repository is in it');
      assert.ok(report.rows > 50);

      // Wipe: the server, its database and its data folder are gone; only the backup and the KEK remain.
      const kek = join(work, 'kek');
      copyFileSync(join(a.dataDir, 'kek'), kek);
      await a.stop();

      const dataDir = mkdtempSync(join(tmpdir(), 'microapp-restored-'));
      const fresh = await freshDatabase(engine, dataDir);
      try {
        // The wrong KEK restores nothing.
        await assert.rejects(
          restoreBackup({
            db: fresh.db,
            blobs: createFolderBlobStore(dataDir),
            dataDir,
            file,
            kek: Buffer.alloc(32, 1),
          }),
          (error: unknown) =>
            error instanceof RestoreError &&
            /does not open the signing key in this backup/.test(error.message),
        );
        const none = await fresh.db.kysely.selectFrom('apps').select('id').execute();
        assert.equal(none.length, 0, 'nothing was written');

        copyFileSync(kek, join(dataDir, 'kek'));
        const restored = await restoreBackup({
          db: fresh.db,
          blobs: createFolderBlobStore(dataDir),
          dataDir,
          file,
          kek: loadKek({ env: {}, devFile: join(dataDir, 'kek') }),
        });
        assert.equal(restored.artifacts, 1);
        // A second restore into the same database is refused, and says why.
        await assert.rejects(
          restoreBackup({
            db: fresh.db,
            blobs: createFolderBlobStore(dataDir),
            dataDir,
            file,
            kek: Buffer.alloc(32, 1),
          }),
          /a restore goes into an empty database/,
        );

        const b = await startServer(
          loadConfig(
            { dev: true, port: 0, devIdpPort: 0, dataDir },
            { MICROAPP_LOG_LEVEL: 'silent', MICROAPP_JOBS: 'off' },
          ),
          { db: fresh.db, logger: pino({ level: 'silent' }) },
        );
        try {
          // The tokens, the chain, the signed version and the repository came back.
          const verify = await call(b, 'GET', '/api/v1/audit/verify', { token: t.carol });
          assert.equal(verify.status, 200, verify.text);
          assert.equal(verify.body.ok, true, verify.text);
          const verification = await call(b, 'GET', '/api/v1/apps/kept-poll/versions/1.0.0/verification', {
            token: t.dave,
          });
          assert.equal(verification.body.ok, true, verification.text);
          const dep = await call(b, 'POST', '/api/v1/apps/kept-poll/deployments', {
            token: t.dave,
            body: { version: '1.0.0' },
          });
          assert.ok(dep.status < 300, dep.text);
          const answer = await viaGateway(b, 'kept-poll', '/', { authorization: `Bearer ${t.dave}` });
          assert.equal(answer.body, 'still here');
          // The archive came back with it: the retired app restores.
          const back = await call(b, 'POST', '/api/v1/apps/retired-poll/restore', { token: t.dave });
          assert.equal(back.status, 200, back.text);
          const repo = await call(b, 'GET', '/api/v1/apps/kept-poll/repository', { token: t.dave });
          assert.equal(repo.status, 200, repo.text);
          assert.ok(repo.body.commits.length >= 1, repo.text);
        } finally {
          await b.close();
        }
      } finally {
        await fresh.db.destroy();
        await fresh.drop();
        rmSync(dataDir, { recursive: true, force: true });
        rmSync(work, { recursive: true, force: true });
      }
    });
  });

describe('backup and restore with the blob registry', () => {
  test('a restore into a new registry puts each artifact back with its Sigstore bundles as its referrers', async () => {
    const user = { name: 'platform', password: 'registry-pw-7' };
    const before = await startRegistry({ user });
    const after = await startRegistry({ user });
    const storeOn = (registry: TestRegistry) =>
      createOciBlobStore({ url: `${registry.url}/microapp`, username: user.name, password: user.password });
    const a = await startTestServer('sqlite', {
      env: {
        MICROAPP_BLOB_REGISTRY: `${before.url}/microapp`,
        MICROAPP_BLOB_REGISTRY_USERNAME: user.name,
        MICROAPP_BLOB_REGISTRY_PASSWORD: user.password,
      },
    });
    const work = mkdtempSync(join(tmpdir(), 'microapp-backup-oci-'));
    const dataDir = mkdtempSync(join(tmpdir(), 'microapp-restored-oci-'));
    const fresh = await freshDatabase('sqlite', dataDir);
    let stopped = false;
    try {
      const t = await signInEveryone(a);
      await importEmptySnapshot(a, t.carol);
      const { digest } = (await pollApp(a, t.dave, 'signed-poll'))!;
      const file = join(work, 'microapp.tar.gz');
      const live = a.rawDb();
      await writeBackup({ db: live, blobs: storeOn(before), dataDir: a.dataDir, out: file, version });
      await live.destroy();
      copyFileSync(join(a.dataDir, 'kek'), join(dataDir, 'kek'));
      await a.stop();
      stopped = true;

      const restored = await restoreBackup({
        db: fresh.db,
        blobs: storeOn(after),
        dataDir,
        file,
        kek: loadKek({ env: {}, devFile: join(dataDir, 'kek') }),
      });
      assert.equal(restored.artifacts, 1);
      // In the new registry: the artifact, and the index of its referrers, each a stored bundle.
      const found = await referrersOf(after, user, 'microapp/artifacts', digest);
      assert.ok(found.items.length > 0, 'the referrers came back with the artifact');
      const stored = await fresh.db.kysely
        .selectFrom('app_versions')
        .select('bundles')
        .where('digest', '=', digest)
        .executeTakeFirstOrThrow();
      assert.deepEqual(found.items.map((r) => r.name).sort(), Object.keys(JSON.parse(stored.bundles)).sort());
      // The app's repository was shared (the default with a registry): its branches are rows, its objects
      // packs in the registry. A replica with an empty folder reads it whole from the restored two.
      const app = await fresh.db.kysely
        .selectFrom('apps')
        .select('id')
        .where('name', '=', 'signed-poll')
        .executeTakeFirstOrThrow();
      const main = await fresh.db.kysely
        .selectFrom('repo_refs')
        .select('commit_id')
        .where('repo_id', '=', app.id)
        .where('ref', '=', 'refs/heads/main')
        .executeTakeFirstOrThrow();
      const repos = createSharedRepoStore({
        db: fresh.db.kysely,
        clock: adjustableClock(),
        blobs: storeOn(after),
        local: createRepoStore({
          dir: join(dataDir, 'repos-new'),
          hooksDir: join(dataDir, 'hooks-new'),
          maxPushBytes: 1024 * 1024,
        }),
      });
      assert.equal(await repos.head(app.id), main.commit_id);
      assert.ok((await repos.log(app.id, 'main')).length >= 1);
    } finally {
      if (!stopped) await a.stop();
      await fresh.db.destroy();
      await before.stop();
      await after.stop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }
  });
});
