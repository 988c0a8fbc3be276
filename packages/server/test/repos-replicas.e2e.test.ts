import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { importAdvisories } from '../../cli/test/cli-harness.ts';
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

/**
 * Two replicas of the platform on one PostgreSQL and one data folder (repositories included): a push
 * through one and a push through the other update the same change request, and two reviewers approving at
 * once on different replicas merge it once, with one build that ships it.
 */
if (engines().includes('postgres'))
  describe('change requests across two replicas', () => {
    let a: TestServer;
    let b: RunningServer;
    let work: string;
    before(async () => {
      a = await startTestServer('postgres');
      b = await startReplica(a);
      work = mkdtempSync(join(tmpdir(), 'microapp-replicas-'));
      await importAdvisories({ MICROAPP_CONFIG_DIR: join(work, 'config'), MICROAPP_SERVER: a.url }, work);
    });
    after(async () => {
      await b?.close();
      await b?.db.destroy();
      await a?.stop();
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
  });
