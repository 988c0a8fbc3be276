import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { importAdvisories } from '../../cli/test/cli-harness.ts';
import type { RunningServer } from '../src/server.ts';
import { gitCli } from './git-client.ts';
import { startGitHostStandIn } from './git-host-standin.ts';
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
 * Two replicas with data folders of their own, on one PostgreSQL, for an app whose code lives at GitHub:
 * the webhook reaches one replica, which fetches the pull request and checks it; a reviewer reads the
 * change's code and approves through the other, which never saw the pull request, fetches what it needs,
 * merges at GitHub and ships the merge commit.
 */
if (engines().includes('postgres'))
  describe('hosted repositories across two replicas', () => {
    let a: TestServer;
    let b: RunningServer;
    let work: string;
    let github: Awaited<ReturnType<typeof startGitHostStandIn>>;
    const token = 'ghp_standin_replicas_0123456789';
    const secret = 'whsec-replicas-0123456789-abcdefghij';
    const full = 'acme-apps/board-minutes';

    before(async () => {
      work = mkdtempSync(join(tmpdir(), 'microapp-hosted-replicas-'));
      github = await startGitHostStandIn({
        kind: 'github',
        token,
        // GitHub's webhook reaches the second replica only.
        webhook: { url: () => `${b.url}/hooks/git/github`, secret },
        templates: { 'acme/microapp-template-form': { 'README.md': '# A form\n' } },
      });
      writeFileSync(join(work, 'token'), token, { mode: 0o600 });
      writeFileSync(join(work, 'secret'), secret, { mode: 0o600 });
      const env = {
        MICROAPP_KEK: randomBytes(32).toString('base64'),
        MICROAPP_GIT_HOST: 'github',
        MICROAPP_GIT_HOST_API_URL: github.url,
        MICROAPP_GIT_HOST_OWNER: 'acme-apps',
        MICROAPP_GIT_HOST_TEMPLATES: 'form=acme/microapp-template-form',
        MICROAPP_GIT_HOST_TOKEN_FILE: join(work, 'token'),
        MICROAPP_GIT_HOST_WEBHOOK_SECRET_FILE: join(work, 'secret'),
      };
      a = await startTestServer('postgres', { env });
      b = await startReplica(a, { dataDir: mkdtempSync(join(tmpdir(), 'microapp-replica-b-')), env });
      await importAdvisories({ MICROAPP_CONFIG_DIR: join(work, 'config'), MICROAPP_SERVER: a.url }, work);
    });
    after(async () => {
      await b?.close();
      await b?.db.destroy();
      await a?.stop();
      await github?.close();
      rmSync(work, { recursive: true, force: true });
    });

    test('a pull request checked by one replica is read, approved, merged and shipped through the other', async () => {
      const t = await signInEveryone(a);
      const reg = await call(a, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: lunchPoll({
          name: 'board-minutes',
          owner: people.alice,
          purpose: 'Collect the board’s questions before each meeting',
          dataClasses: ['internal', 'confidential'],
          runtime: { kind: 'node', entry: 'server.js' },
          template: { name: 'form', version: '1.2.0' },
        }),
      });
      assert.equal(reg.status, 201, reg.text);
      const approve = await call(a, 'POST', '/api/v1/apps/board-minutes/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
      assert.equal(approve.status, 200, approve.text);

      const repo = await call(a, 'GET', '/api/v1/apps/board-minutes/repository', { token: t.alice });
      const auth = `http.extraHeader=Authorization: Basic ${Buffer.from(`x:${token}`).toString('base64')}`;
      assert.equal(
        (await gitCli(work, ['-c', auth, 'clone', '--quiet', repo.body.cloneUrl, 'clone'])).code,
        0,
      );
      const clone = join(work, 'clone');
      const form = JSON.parse(readFileSync(join(clone, 'form.json'), 'utf8'));
      form.fields.push({ id: 'topic', label: 'Which agenda item?', required: true, max: 200 });
      writeFileSync(join(clone, 'form.json'), JSON.stringify(form, null, 2));
      await gitCli(clone, ['commit', '-qam', 'Ask for the agenda item']);
      assert.equal(
        (await gitCli(clone, ['-c', auth, 'push', '--quiet', 'origin', 'HEAD:refs/heads/topic'])).code,
        0,
      );
      const opened = await github.openPull(full, 'topic', 'Ask for the agenda item');
      assert.equal(opened.status, 202, JSON.stringify(opened.answer));

      let change = (await call(b, 'GET', '/api/v1/apps/board-minutes/changes/1', { token: t.alice })).body;
      for (let i = 0; change.checks?.[0]?.state === 'pending' && i < 1200; i++) {
        await new Promise((r) => setTimeout(r, 250));
        change = (await call(b, 'GET', '/api/v1/apps/board-minutes/changes/1', { token: t.alice })).body;
      }
      assert.equal(change.checks[0].state, 'passed', JSON.stringify(change, null, 2));

      // The first replica never saw the pull request: it fetches the commit to show the reviewer its code.
      const read = await call(a, 'GET', '/api/v1/apps/board-minutes/changes/1', { token: t.bob });
      assert.equal(read.status, 200, read.text);
      assert.deepEqual(
        read.body.diff.files.map((f: { path: string }) => f.path),
        ['form.json'],
      );
      const approved = await call(a, 'POST', '/api/v1/apps/board-minutes/changes/1/reviews', {
        token: t.bob,
        body: { decision: 'approved', head: change.head },
      });
      assert.equal(approved.status, 200, approved.text);
      for (
        let i = 0;
        !['passed', 'failed'].includes(change.release?.state) && !change.problem && i < 1200;
        i++
      ) {
        await new Promise((r) => setTimeout(r, 250));
        change = (await call(a, 'GET', '/api/v1/apps/board-minutes/changes/1', { token: t.alice })).body;
      }
      assert.equal(change.release?.state, 'passed', JSON.stringify(change, null, 2));
      assert.equal(change.merged.commit, await github.head(full));
      assert.ok(
        github.statuses.some((s) => s.sha === change.head && s.state === 'success'),
        'the replica that checked it reported it',
      );
      assert.deepEqual(github.violations, []);
    });
  });
