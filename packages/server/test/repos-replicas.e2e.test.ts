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
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { importAdvisories } from '../../cli/test/cli-harness.ts';
import { createOciBlobStore } from '../src/modules/blobs/oci-blob-store.ts';
import type { RunningServer } from '../src/server.ts';
import { gitCli, withToken } from './git-client.ts';
import {
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  startReplica,
  startTestServer,
  type TestServer,
} from './harness.ts';
import { startRegistry, type TestRegistry } from './oci-registry.ts';

/**
 * Two replicas of the platform on one PostgreSQL: a push through one and a push through the other update
 * the same change request, and two reviewers approving at once on different replicas merge it once, with
 * one build that ships it. Once on one shared data folder (repositories on a shared disk), once with
 * nothing shared but the database and an OCI registry (MICROAPP_GIT_STORE=shared, the default with a
 * registry): each replica's folder of its own, its repositories a cache of what the database and the
 * registry hold.
 */
const setups = [
  { title: 'one data folder', own: false },
  { title: 'nothing shared but PostgreSQL and an OCI registry', own: true },
];
if (engines().includes('postgres'))
  for (const setup of setups)
    describe(`change requests across two replicas (${setup.title})`, () => {
      let a: TestServer;
      let b: RunningServer;
      let work: string;
      let registry: TestRegistry | null = null;
      let bDir = '';
      before(async () => {
        work = mkdtempSync(join(tmpdir(), 'microapp-replicas-'));
        if (setup.own) {
          registry = await startRegistry();
          const env = { MICROAPP_BLOB_REGISTRY: `${registry.url}/microapp` };
          a = await startTestServer('postgres', { env });
          const dataDir = join(work, 'replica-b');
          bDir = dataDir;
          mkdirSync(dataDir);
          // The replicas share the KEK (in production MICROAPP_KEK_FILE from a secret) and nothing else on disk.
          copyFileSync(join(a.dataDir, 'kek'), join(dataDir, 'kek'));
          b = await startReplica(a, { dataDir, env });
        } else {
          a = await startTestServer('postgres');
          b = await startReplica(a);
        }
        await importAdvisories({ MICROAPP_CONFIG_DIR: join(work, 'config'), MICROAPP_SERVER: a.url }, work);
      });
      after(async () => {
        await b?.close();
        await b?.db.destroy();
        await a?.stop();
        await registry?.stop();
        rmSync(work, { recursive: true, force: true });
      });

      test('pushes through either replica feed one change; concurrent approvals merge it once', async () => {
        const t = await signInEveryone(a);
        const reg = await call(a, 'POST', '/api/v1/apps', {
          token: t.alice,
          body: lunchPoll({
            name: 'board-minutes',
            owner: people.alice,
            purpose: 'Collect the board’s questions before each meeting',
            dataClasses: ['internal', 'confidential'],
            runtime: { kind: 'node', entry: 'server.js' },
            template: { name: 'form', version: '1.1.0' },
          }),
        });
        assert.equal(reg.status, 201, reg.text);
        assert.equal(
          (
            await call(a, 'POST', '/api/v1/apps/board-minutes/reviews', {
              token: t.bob,
              body: { decision: 'approve' },
            })
          ).status,
          200,
        );
        const repo = await call(b, 'GET', '/api/v1/apps/board-minutes/repository', { token: t.alice });
        const clone = join(work, 'clone');
        assert.equal(
          (await gitCli(work, ['clone', '--quiet', withToken(repo.body.cloneUrl, t.alice), 'clone'])).code,
          0,
        );
        const viaA = withToken(`${a.url}/git/board-minutes.git`, t.alice);
        const viaB = withToken(`${b.url}/git/board-minutes.git`, t.alice);

        writeFileSync(join(clone, 'README.md'), 'Questions for the board.\n');
        await gitCli(clone, ['commit', '-am', 'Describe the app']);
        assert.equal((await gitCli(clone, ['push', viaA, 'HEAD:refs/heads/describe'])).code, 0);
        const form = JSON.parse(readFileSync(join(clone, 'form.json'), 'utf8'));
        form.fields.push({ id: 'topic', label: 'Which agenda item?', required: true, max: 200 });
        writeFileSync(join(clone, 'form.json'), JSON.stringify(form, null, 2));
        await gitCli(clone, ['commit', '-am', 'Ask for the agenda item']);
        const second = await gitCli(clone, ['push', viaB, 'HEAD:refs/heads/describe']);
        assert.equal(second.code, 0, second.stderr);

        const list = await call(a, 'GET', '/api/v1/apps/board-minutes/changes', { token: t.alice });
        assert.equal(
          list.body.items.length,
          1,
          'one change request for one branch, whichever replica took the push',
        );
        assert.equal(list.body.items[0].commits, undefined);
        let change = list.body.items[0];
        for (let i = 0; change.checks[0].state === 'pending' && i < 600; i++) {
          await new Promise((r) => setTimeout(r, 250));
          change = (await call(b, 'GET', '/api/v1/apps/board-minutes/changes/1', { token: t.alice })).body;
        }
        assert.equal(change.checks[0].state, 'passed', JSON.stringify(change, null, 2));

        // Bob on one replica and Erin on the other approve at the same moment: one merge, one release.
        const [x, y] = await Promise.all([
          call(a, 'POST', '/api/v1/apps/board-minutes/changes/1/reviews', {
            token: t.bob,
            body: { decision: 'approved', head: change.head },
          }),
          call(b, 'POST', '/api/v1/apps/board-minutes/changes/1/reviews', {
            token: t.erin,
            body: { decision: 'approved', head: change.head },
          }),
        ]);
        assert.ok([x.status, y.status].includes(200), `${x.text} ${y.text}`);
        const merged = await call(a, 'GET', '/api/v1/audit/events?action=change.merged', { token: t.ivan });
        assert.equal(merged.body.items.length, 1, merged.text);
        const releases = (
          await call(a, 'GET', '/api/v1/apps/board-minutes/builds', { token: t.alice })
        ).body.items.filter((bld: { commit: { publish: boolean } | null }) => bld.commit?.publish);
        assert.equal(releases.length, 1);
        const head = await call(b, 'GET', '/api/v1/apps/board-minutes/repository', { token: t.alice });
        assert.equal(head.body.head, change.head);
      });

      test('two pushes to one branch at once, through the two replicas: one lands, the other is told', async () => {
        const t = await signInEveryone(a);
        const viaA = withToken(`${a.url}/git/board-minutes.git`, t.alice);
        const viaB = withToken(`${b.url}/git/board-minutes.git`, t.alice);
        const clones = [join(work, 'race-a'), join(work, 'race-b')];
        for (const [i, clone] of clones.entries()) {
          assert.equal((await gitCli(work, ['clone', '--quiet', i ? viaB : viaA, clone])).code, 0);
          writeFileSync(join(clone, 'NOTES.md'), `notes from ${i ? 'b' : 'a'}\n`);
          await gitCli(clone, ['add', 'NOTES.md']);
          await gitCli(clone, ['commit', '-m', `Notes ${i}`]);
        }
        const commits = await Promise.all(
          clones.map(async (c) => (await gitCli(c, ['rev-parse', 'HEAD'])).stdout.trim()),
        );
        for (let round = 0; round < 3; round++) {
          const branch = `refs/heads/race-${round}`;
          const pushes = await Promise.all(
            clones.map((c, i) => gitCli(c, ['push', i ? viaB : viaA, `HEAD:${branch}`])),
          );
          const landed = pushes.map((p) => p.code === 0);
          assert.equal(landed.filter(Boolean).length, 1, pushes.map((p) => p.stderr).join('\n'));
          const winner = commits[landed.indexOf(true)];
          // The loser reads git's own refusal of its branch (the platform's reason when it refused), not a
          // failed HTTP request.
          const loser = pushes[landed.indexOf(false)]!.stderr;
          assert.match(loser, /\[(remote )?rejected\] +HEAD -> race-/, loser);
          assert.doesNotMatch(loser, /RPC failed/, loser);
          // Both replicas show the winner's commit, and git told the loser its push did not land.
          for (const server of [a, b]) {
            const listed = await gitCli(work, ['ls-remote', server === a ? viaA : viaB, branch]);
            assert.equal(listed.stdout.split('\t')[0], winner, `round ${round} through ${server.url}`);
          }
        }
      });

      if (setup.own)
        test('a pack named by nothing for an hour leaves the registry, and nothing else does', async () => {
          const db = a.db.kysely;
          const blobs = createOciBlobStore({
            url: `${registry!.url}/microapp`,
            username: null,
            password: null,
          });
          // What a replica killed an hour ago between putting a pack and naming it left: the pack and its
          // upload row. (The servers' clock is not moved: it would expire the replicas' leases too.)
          const orphan = await blobs.put('pack', Buffer.from(`PACK of a replica that died ${Date.now()}`));
          const anHourAgo = new Date(a.internals.clock.now().getTime() - 3_601_000).toISOString();
          await db
            .insertInto('repo_pack_uploads')
            .values({ digest: orphan, uploaded_at: anHourAgo })
            .execute();
          const named = new Set(
            (await db.selectFrom('repo_packs').select('digest').execute()).map((p) => p.digest),
          );
          // Packs of pushes that lost the races above, when they lost after putting theirs: within the hour.
          const recent = (await db.selectFrom('repo_pack_uploads').select('digest').execute())
            .map((u) => u.digest)
            .filter((d) => !named.has(d) && d !== orphan);
          assert.equal(await blobs.has('pack', orphan), true);
          assert.equal(await a.internals.jobs.trigger('repository-packs'), true);
          const job = (await a.internals.jobs.list()).find((j) => j.name === 'repository-packs');
          assert.equal(job?.lastError, null);
          assert.equal(job?.lastResult?.removed, 1, JSON.stringify(job?.lastResult));
          assert.equal(await blobs.has('pack', orphan), false);
          for (const d of [...named, ...recent]) assert.equal(await blobs.has('pack', d), true, d);
          // A replica with no copy still reads every repository whole.
          const t = await signInEveryone(a);
          rmSync(join(bDir, 'repos'), { recursive: true, force: true });
          const clone = join(work, 'after-sweep');
          const via = withToken(`${b.url}/git/board-minutes.git`, t.alice);
          const cloned = await gitCli(work, ['clone', '--quiet', via, clone]);
          assert.equal(cloned.code, 0, cloned.stderr);
          assert.equal((await gitCli(clone, ['fsck', '--strict'])).code, 0);
        });

      if (setup.own)
        test("a replica's folder is a cache: lost, it is filled again from the database and the registry", async () => {
          const t = await signInEveryone(a);
          const app = await call(a, 'GET', '/api/v1/apps/board-minutes', { token: t.alice });
          const copy = join(bDir, 'repos', `${app.body.id}.git`);
          assert.ok(existsSync(copy));
          rmSync(copy, { recursive: true, force: true });
          const clone = join(work, 'after-loss');
          const cloned = await gitCli(work, [
            'clone',
            '--quiet',
            withToken(`${b.url}/git/board-minutes.git`, t.alice),
            clone,
          ]);
          assert.equal(cloned.code, 0, cloned.stderr);
          const head = await call(a, 'GET', '/api/v1/apps/board-minutes/repository', { token: t.alice });
          assert.equal((await gitCli(clone, ['rev-parse', 'HEAD'])).stdout.trim(), head.body.head);
          // Nothing of the repositories is on a shared disk: a's folder and b's are not the same.
          assert.notEqual(a.dataDir, bDir);
        });
    });

if (engines().includes('postgres'))
  describe('the upgrade from a shared folder of repositories to shared repositories', () => {
    test("the first replica started with MICROAPP_GIT_STORE=shared shares the folder's repositories", async () => {
      const a = await startTestServer('postgres');
      const registry = await startRegistry();
      const work = mkdtempSync(join(tmpdir(), 'microapp-upgrade-repos-'));
      const started: RunningServer[] = [];
      try {
        const t = await signInEveryone(a);
        const reg = await call(a, 'POST', '/api/v1/apps', {
          token: t.dave,
          body: lunchPoll({ name: 'before-upgrade', template: { name: 'form', version: '1.1.0' } }),
        });
        assert.equal(reg.status, 201, reg.text);
        const before = await call(a, 'GET', '/api/v1/apps/before-upgrade/repository', { token: t.dave });
        assert.ok(before.body.head);
        const env = { MICROAPP_BLOB_REGISTRY: `${registry.url}/microapp`, MICROAPP_GIT_STORE: 'shared' };
        // A replica with a folder of its own, started first: the repository is nowhere it can read, and
        // it says so rather than make a new one that would hide the history.
        const dataDir = join(work, 'own');
        mkdirSync(dataDir);
        copyFileSync(join(a.dataDir, 'kek'), join(dataDir, 'kek'));
        const own = await startReplica(a, { dataDir, env });
        started.push(own);
        const early = await gitCli(work, [
          'clone',
          '--quiet',
          withToken(`${own.url}/git/before-upgrade.git`, t.dave),
          join(work, 'too-early'),
        ]);
        assert.notEqual(early.code, 0);
        const asked = await call(own, 'GET', '/api/v1/apps/before-upgrade/repository', { token: t.dave });
        assert.equal(asked.status, 503, asked.text);
        assert.match(asked.text, /start one replica with MICROAPP_GIT_STORE=shared on the data folder/);
        // The new release on the folder the replicas shared until now: it shares what the folder holds.
        started.push(await startReplica(a, { env }));
        const clone = join(work, 'clone');
        const cloned = await gitCli(work, [
          'clone',
          '--quiet',
          withToken(`${own.url}/git/before-upgrade.git`, t.dave),
          clone,
        ]);
        assert.equal(cloned.code, 0, cloned.stderr);
        assert.equal((await gitCli(clone, ['rev-parse', 'HEAD'])).stdout.trim(), before.body.head);
        assert.ok(existsSync(join(clone, 'form.json')));
      } finally {
        for (const s of started.reverse()) {
          await s.close().catch(() => {});
          await s.db.destroy().catch(() => {});
        }
        await a.stop();
        await registry.stop();
        rmSync(work, { recursive: true, force: true });
      }
    });
  });
