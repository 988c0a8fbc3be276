import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { gitCli, withToken } from './git-client.ts';
import {
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

/**
 * App repositories as an attacker and a colleague meet them, on both databases: no build runs here (the
 * app whose change is pushed is still waiting for its review), so what is tested is the git server's
 * boundary, main's protection and the change request's bookkeeping. repos.e2e.test.ts builds and ships.
 */
for (const engine of engines()) {
  describe(`app repositories (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    let work: string;
    let url: string;

    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      work = mkdtempSync(join(tmpdir(), 'microapp-git-'));
      // Medium tier (confidential data), so it waits for a reviewer: a pushed change cannot build yet.
      const reg = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: lunchPoll({
          name: 'expense-claims',
          owner: people.alice,
          purpose: 'Collect expense claims with receipts for the monthly close',
          dataClasses: ['internal', 'confidential'],
          runtime: { kind: 'node', entry: 'server.js' },
          template: { name: 'form', version: '1.1.0' },
        }),
      });
      assert.equal(reg.status, 201, reg.text);
      assert.equal(reg.body.app.state, 'pending_review');
      const repo = await call(server, 'GET', '/api/v1/apps/expense-claims/repository', { token: t.alice });
      assert.equal(repo.status, 200, repo.text);
      url = repo.body.cloneUrl;
    });
    after(async () => {
      await server.stop();
      rmSync(work, { recursive: true, force: true });
    });

    const clone = async (token: string, name: string) => {
      const dir = join(work, name);
      const r = await gitCli(work, ['clone', '--quiet', withToken(url, token), name]);
      return { ...r, dir };
    };

    test('registration made the repository from the template, with the registered answers', async () => {
      const repo = await call(server, 'GET', '/api/v1/apps/expense-claims/repository', { token: t.alice });
      assert.equal(repo.body.source, 'template form 1.2.0');
      assert.equal(repo.body.commits.length, 1);
      assert.equal(repo.body.canPush, true);
      assert.match(url, /^http:\/\/localhost:\d+\/git\/expense-claims\.git$/);
      const c = await clone(t.alice, 'alice');
      assert.equal(c.code, 0, c.stderr);
      const manifest = parseYaml(readFileSync(join(c.dir, 'microapp.yaml'), 'utf8'));
      assert.deepEqual(manifest.dataClasses, ['internal', 'confidential']);
      assert.equal(manifest.owner, people.alice);
      assert.match(readFileSync(join(c.dir, 'package.json'), 'utf8'), /"name": "expense-claims"/);
      for (const file of ['server.js', 'form.json', 'package-lock.json', '.github/workflows/microapp.yml'])
        assert.ok(readFileSync(join(c.dir, file)).length > 0, file);
      const events = await call(server, 'GET', '/api/v1/audit/events?action=repository.created', {
        token: t.ivan,
      });
      assert.equal(events.body.items.length, 1, events.text);
      assert.equal(events.body.items[0].actor, people.alice);
    });

    test('no token, a wrong token, another department and a read-only token are refused', async () => {
      const bare = await fetch(`${url}/info/refs?service=git-upload-pack`);
      assert.equal(bare.status, 401);
      assert.match(bare.headers.get('www-authenticate') ?? '', /^Basic realm="microapp"/);
      // A made-up agent token (repos-agents.test.ts has the real ones).
      const agent = await fetch(`${url}/info/refs?service=git-upload-pack`, {
        headers: { authorization: `Basic ${Buffer.from('x:maa_stolen-or-not').toString('base64')}` },
      });
      assert.equal(agent.status, 401);
      assert.match(((await agent.json()) as { detail: string }).detail, /the agent's token is refused/);
      const wrong = await clone('mat_not-a-token', 'wrong');
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /Authentication failed|401/);
      // Frank works in marketing: the app is finance's, so to him it does not exist.
      const frank = await clone(t.frank, 'frank');
      assert.notEqual(frank.code, 0);
      assert.match(frank.stderr, /not found|404/);
      // Only the smart protocol's paths are served: no dumb-HTTP files, no path out of the repository.
      for (const path of ['HEAD', 'objects/info/packs', 'config', '..%2F..%2Fgit-hooks%2Fpre-receive'])
        assert.ok(
          [401, 404].includes(
            (await fetch(`${url}/${path}`, { headers: { authorization: `Bearer ${t.alice}` } })).status,
          ),
          path,
        );
      const traversal = await fetch(
        `${url.replace('expense-claims.git', '..%2Fgit-hooks.git')}/info/refs?service=git-upload-pack`,
        {
          headers: { authorization: `Bearer ${t.alice}` },
        },
      );
      assert.equal(traversal.status, 404);
      const readOnly = await call(server, 'POST', '/api/v1/tokens', {
        token: t.alice,
        body: { name: 'read only', scopes: ['apps:read'] },
      });
      const ro = await clone(readOnly.body.token, 'readonly');
      assert.equal(ro.code, 0, ro.stderr);
      await gitCli(ro.dir, ['commit', '--allow-empty', '-m', 'try']);
      const push = await gitCli(ro.dir, ['push', 'origin', 'HEAD:refs/heads/try']);
      assert.notEqual(push.code, 0);
      assert.match(push.stderr, /403/);
    });

    test('a colleague may read the code but only the owner pushes; main and tags are protected', async () => {
      const dave = await clone(t.dave, 'dave');
      assert.equal(dave.code, 0, dave.stderr);
      writeFileSync(join(dave.dir, 'README.md'), 'mine now\n');
      await gitCli(dave.dir, ['commit', '-am', 'Take over']);
      const daves = await gitCli(dave.dir, ['push', 'origin', 'HEAD:refs/heads/takeover']);
      assert.notEqual(daves.code, 0);
      assert.match(daves.stderr, /403/);

      const alice = join(work, 'alice');
      const before = await call(server, 'GET', '/api/v1/apps/expense-claims/repository', { token: t.alice });
      writeFileSync(join(alice, 'README.md'), 'straight to main\n');
      await gitCli(alice, ['commit', '-am', 'Skip the review']);
      const direct = await gitCli(alice, ['push', 'origin', 'HEAD:main']);
      assert.notEqual(direct.code, 0);
      assert.match(direct.stderr, /main is protected: push your change to a branch/);
      const forced = await gitCli(alice, ['push', '--force', 'origin', 'HEAD:main']);
      assert.notEqual(forced.code, 0);
      await gitCli(alice, ['tag', 'v1']);
      const tag = await gitCli(alice, ['push', 'origin', 'v1']);
      assert.notEqual(tag.code, 0);
      assert.match(tag.stderr, /only branches may be pushed/);
      const afterwards = await call(server, 'GET', '/api/v1/apps/expense-claims/repository', {
        token: t.alice,
      });
      assert.equal(afterwards.body.head, before.body.head, 'main did not move');
      const changes = await call(server, 'GET', '/api/v1/apps/expense-claims/changes', { token: t.alice });
      assert.deepEqual(changes.body.items, []);
    });

    test('a pushed branch opens a change request that says why it cannot be checked yet', async () => {
      const alice = join(work, 'alice');
      await gitCli(alice, ['reset', '--hard', 'origin/main']);
      const form = JSON.parse(readFileSync(join(alice, 'form.json'), 'utf8'));
      form.fields.push({ id: 'amount', label: 'Amount', required: true, max: 20 });
      writeFileSync(join(alice, 'form.json'), JSON.stringify(form, null, 2));
      await gitCli(alice, ['commit', '-am', 'Ask for the amount']);
      const push = await gitCli(alice, ['push', 'origin', 'HEAD:refs/heads/amount']);
      assert.equal(push.code, 0, push.stderr);
      const list = await call(server, 'GET', '/api/v1/apps/expense-claims/changes', { token: t.alice });
      assert.equal(list.body.items.length, 1, list.text);
      const cr = list.body.items[0];
      assert.equal(cr.number, 1);
      assert.equal(cr.title, 'Ask for the amount');
      assert.equal(cr.state, 'open');
      assert.equal(cr.checks[0].state, 'failed');
      assert.match(cr.checks[0].detail, /pending review; a build starts once it is approved/);
      assert.match(cr.rule, /^medium tier: merged once the checks pass and a reviewer approves$/);
      assert.equal(cr.reviews.missing.length, 1);

      // The reviewer reads the code and the manifest side by side.
      const shown = await call(server, 'GET', '/api/v1/apps/expense-claims/changes/1', { token: t.bob });
      assert.equal(shown.status, 200, shown.text);
      assert.deepEqual(
        shown.body.diff.files.map((f: { path: string }) => f.path),
        ['form.json'],
      );
      assert.match(shown.body.diff.patch, /\+.*"label": "Amount"/);
      assert.equal(shown.body.manifest.changed, false);

      // An approval does not merge a change whose checks failed; the owner cannot review their own.
      const own = await call(server, 'POST', '/api/v1/apps/expense-claims/changes/1/reviews', {
        token: t.alice,
        body: { decision: 'approved' },
      });
      assert.equal(own.status, 403);
      const stale = await call(server, 'POST', '/api/v1/apps/expense-claims/changes/1/reviews', {
        token: t.bob,
        body: { decision: 'approved', head: '0'.repeat(40) },
      });
      assert.equal(stale.status, 409, stale.text);
      const approved = await call(server, 'POST', '/api/v1/apps/expense-claims/changes/1/reviews', {
        token: t.bob,
        body: { decision: 'approved', head: cr.head },
      });
      assert.equal(approved.status, 200, approved.text);
      assert.equal(approved.body.state, 'open');
      assert.deepEqual(approved.body.reviews.missing, []);
      const again = await call(server, 'POST', '/api/v1/apps/expense-claims/changes/1/reviews', {
        token: t.bob,
        body: { decision: 'approved' },
      });
      assert.equal(again.status, 409);

      // A new push is a new commit: the approval was for the old one, so the review is asked again.
      writeFileSync(join(alice, 'README.md'), 'with an amount\n');
      await gitCli(alice, ['commit', '-am', 'Say so in the readme']);
      assert.equal((await gitCli(alice, ['push', 'origin', 'HEAD:refs/heads/amount'])).code, 0);
      const moved = await call(server, 'GET', '/api/v1/apps/expense-claims/changes/1', { token: t.bob });
      assert.notEqual(moved.body.head, cr.head);
      assert.equal(moved.body.reviews.missing.length, 1);
      assert.equal(moved.body.commits.length, 2);
    });

    test('typed questions need form code that checks them: older code is refused, with nothing written', async () => {
      const reg = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: lunchPoll({
          name: 'old-form',
          owner: people.alice,
          runtime: { kind: 'node', entry: 'server.js' },
          template: { name: 'form', version: '1.1.0' },
        }),
      });
      assert.equal(reg.status, 201, reg.text);
      const made = await call(server, 'GET', '/api/v1/apps/old-form/repository', { token: t.alice });
      assert.equal(made.body.formTypes, true, 'made today, from the form template that reads types');
      // The code as the form template before 1.2.0 wrote it: every answer is text.
      const store = server.internals.repoStore;
      const appId = reg.body.app.id;
      const main = (await store.head(appId))!;
      const older = await store.commitFiles(
        appId,
        main,
        { 'src/app.js': 'export function validate(form) { return { ok: true, record: form }; }\n' },
        'The form as template 1.1.0 made it',
        { name: 'Alice', email: people.alice },
      );
      await store.setBranch(appId, 'main', older, main);
      const repo = await call(server, 'GET', '/api/v1/apps/old-form/repository', { token: t.alice });
      assert.equal(repo.body.formTypes, false);

      const typed = [
        { id: 'spent_on', label: 'Spent on', required: true, max: 10, type: 'date' },
        { id: 'kind', label: 'Kind', required: true, max: 50, type: 'choice', choices: ['Travel', 'Meals'] },
      ];
      const refused = await call(server, 'POST', '/api/v1/apps/old-form/changes', {
        token: t.alice,
        body: { fields: typed },
      });
      assert.equal(refused.status, 409, refused.text);
      assert.match(refused.body.detail, /older than 1\.2\.0 and takes every answer as text/);
      // Questions the schema or the builder's own rules refuse: a choice with nothing to choose, a type
      // nobody knows, choices on a date.
      for (const [fields, why] of [
        [[{ ...typed[1], choices: undefined }], /list at least two choices/],
        [[{ ...typed[0], type: 'colour' }], /type/],
        [[{ ...typed[0], choices: ['a', 'b'] }], /has choices but is not a choice/],
        [[{ ...typed[1], choices: ['Travel', 'Travel'] }], /lists a choice twice/],
      ] as const) {
        const bad = await call(server, 'POST', '/api/v1/apps/old-form/changes', {
          token: t.alice,
          body: { fields },
        });
        assert.equal(bad.status, 400, bad.text);
        assert.match(bad.text, why);
      }
      assert.equal((await store.head(appId))!, older, 'main did not move');
      const changes = await call(server, 'GET', '/api/v1/apps/old-form/changes', { token: t.alice });
      assert.deepEqual(changes.body.items, [], 'no change was opened');
    });

    test('closing is for the author, the owner or an admin; deleting the branch closes it too', async () => {
      const alice = join(work, 'alice');
      const frank = await call(server, 'POST', '/api/v1/apps/expense-claims/changes/1/close', {
        token: t.frank,
      });
      assert.equal(frank.status, 404);
      const dave = await call(server, 'POST', '/api/v1/apps/expense-claims/changes/1/close', {
        token: t.dave,
      });
      assert.equal(dave.status, 403);
      // Deleting the branch closes its change request.
      assert.equal((await gitCli(alice, ['push', 'origin', ':refs/heads/amount'])).code, 0);
      const closed = await call(server, 'GET', '/api/v1/apps/expense-claims/changes/1', { token: t.alice });
      assert.equal(closed.body.state, 'closed');
      const audit = await call(server, 'GET', '/api/v1/audit/events?action=change.closed', { token: t.ivan });
      assert.equal(audit.body.items.length, 1);
      const pushes = await call(server, 'GET', '/api/v1/audit/events?action=repository.pushed', {
        token: t.ivan,
      });
      assert.equal(pushes.body.items.length, 3, 'two pushes of the branch and its deletion');
    });
  });
}
