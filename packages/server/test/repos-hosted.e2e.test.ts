import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitCli } from './git-client.ts';
import { startGitHostStandIn } from './git-host-standin.ts';
import {
  call,
  lunchPoll,
  people,
  type signInEveryone,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

type Change = {
  number: number;
  state: string;
  head: string;
  checks: { state: string; detail: string }[];
  merged: { commit: string; by: string } | null;
  release: { state: string; version: string | null; error: string | null } | null;
  problem: string | null;
  cloneUrl: string;
  hostChange: { number: number; url: string } | null;
};

/**
 * An app whose code lives at the company's GitHub or GitLab (MICROAPP_GIT_HOST), against a stand-in that
 * answers the recorded contract's requests with real git behind them: the repository made from the
 * template repository with the registered answers, a developer's pull (merge) request checked by the
 * platform and reported as a commit status, merged through the API only after the reviewer approves,
 * then live; the console's Deploy opening its own.
 */
for (const kind of ['github', 'gitlab'] as const)
  describe(`apps whose code lives at ${kind === 'github' ? 'GitHub' : 'GitLab'}`, () => {
    const hostName = kind === 'github' ? 'GitHub' : 'GitLab';
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    let dir: string;
    let stop: () => Promise<void>;
    let github: Awaited<ReturnType<typeof startGitHostStandIn>>;
    const token = kind === 'github' ? 'ghp_standin_platform_token_0123456789' : 'glpat-standin-0123456789';
    const secret = 'whsec-standin-0123456789-abcdefghij';
    const owner = kind === 'github' ? 'acme-apps' : '42';
    const template = kind === 'github' ? 'acme/microapp-template-form' : '7';
    let full = '';

    before(async () => {
      github = await startGitHostStandIn({
        kind,
        token,
        webhook: { url: () => `${server.url}/hooks/git/${kind}`, secret },
        templates: { [template]: { 'README.md': '# A form, as Acme vets it\n' } },
      });
      full = github.fullName(owner, 'expense-claims');
      const files = mkdtempSync(join(tmpdir(), 'microapp-github-'));
      writeFileSync(join(files, 'token'), token, { mode: 0o600 });
      writeFileSync(join(files, 'secret'), secret, { mode: 0o600 });
      ({ server, t, dir, stop } = await startBuildServer({
        MICROAPP_GIT_HOST: kind,
        MICROAPP_GIT_HOST_API_URL: github.url,
        MICROAPP_GIT_HOST_OWNER: owner,
        MICROAPP_GIT_HOST_TEMPLATES: `form=${template}`,
        MICROAPP_GIT_HOST_TOKEN_FILE: join(files, 'token'),
        MICROAPP_GIT_HOST_WEBHOOK_SECRET_FILE: join(files, 'secret'),
      }));
    });
    after(async () => {
      await stop?.();
      await github?.close();
    });

    const changeOf = async (n: number) =>
      (await call<Change>(server, 'GET', `/api/v1/apps/expense-claims/changes/${n}`, { token: t.alice }))
        .body;
    const until = async (n: number, done: (c: Change) => boolean) => {
      for (let i = 0; ; i++) {
        const c = await changeOf(n);
        if (done(c)) return c;
        if (i > 3000) throw new Error(`change #${n} never got there: ${JSON.stringify(c).slice(0, 2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    test('registration makes the repository at the host from the template repository, with the registered answers', async () => {
      const reg = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: lunchPoll({
          name: 'expense-claims',
          owner: people.alice,
          purpose: 'Collect expense claims with receipts for the monthly close',
          dataClasses: ['internal', 'confidential'],
          runtime: { kind: 'node', entry: 'server.js' },
          template: { name: 'form', version: '1.2.0' },
        }),
      });
      assert.equal(reg.status, 201, reg.text);
      const review = await call(server, 'POST', '/api/v1/apps/expense-claims/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
      assert.equal(review.status, 200, review.text);
      const repo = await call(server, 'GET', '/api/v1/apps/expense-claims/repository', { token: t.alice });
      assert.equal(repo.status, 200, repo.text);
      assert.equal(repo.body.host.kind, kind);
      assert.equal(repo.body.host.id, github.idOf(full));
      assert.equal(repo.body.cloneUrl, `${github.url}/git/${full}.git`);
      // The template's own file, and the platform's commit of the registered answers on top of it.
      const clone = join(dir, 'dev');
      const cloned = await gitCli(dir, [
        '-c',
        `http.extraHeader=Authorization: Basic ${Buffer.from(`x:${token}`).toString('base64')}`,
        'clone',
        '--quiet',
        repo.body.cloneUrl,
        'dev',
      ]);
      assert.equal(cloned.code, 0, cloned.stderr);
      assert.match(readFileSync(join(clone, 'README.md'), 'utf8'), /expense-claims|Acme/);
      assert.match(readFileSync(join(clone, 'microapp.yaml'), 'utf8'), /name: expense-claims/);
      assert.ok(readFileSync(join(clone, 'server.js')).length > 0);
      assert.equal(repo.body.head, await github.head(full), 'the platform holds what the host holds');
      assert.deepEqual(github.violations, [], 'every request was one the recorded contract describes');
    });

    test('a pull request is checked, reported to the host, merged through its API after review, then live', async () => {
      const clone = join(dir, 'dev');
      await gitCli(clone, [
        'config',
        'http.extraHeader',
        `Authorization: Basic ${Buffer.from(`x:${token}`).toString('base64')}`,
      ]);
      const form = JSON.parse(readFileSync(join(clone, 'form.json'), 'utf8'));
      form.fields.push({ id: 'cost_centre', label: 'Cost centre', required: true, max: 20 });
      writeFileSync(join(clone, 'form.json'), JSON.stringify(form, null, 2));
      const pkg = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8'));
      assert.ok(pkg.version);
      await gitCli(clone, ['commit', '-qam', 'Ask for the cost centre']);
      const pushed = await gitCli(clone, ['push', '--quiet', 'origin', 'HEAD:refs/heads/cost-centre']);
      assert.equal(pushed.code, 0, pushed.stderr);
      const head = await github.head(full, 'cost-centre');

      // A forged delivery changes nothing: no secret, a wrong one, a signature over other bytes.
      const body = JSON.stringify(
        kind === 'github'
          ? {
              action: 'opened',
              number: 99,
              pull_request: {
                head: { ref: 'cost-centre', sha: head },
                base: { ref: 'main' },
                title: 'Forged',
              },
              repository: { full_name: full },
              sender: { login: 'mallory' },
            }
          : {
              object_kind: 'merge_request',
              project: { id: Number(github.idOf(full)) },
              object_attributes: {
                iid: 99,
                action: 'open',
                source_branch: 'cost-centre',
                target_branch: 'main',
                last_commit: { id: head },
                title: 'Forged',
              },
            },
      );
      const forgeries: Record<string, string>[] =
        kind === 'github'
          ? [
              { 'x-github-event': 'pull_request' },
              { 'x-github-event': 'pull_request', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` },
              { 'x-github-event': 'pull_request', 'x-hub-signature-256': 'sha256=deadbeef' },
              { 'x-github-event': 'pull_request', 'x-gitlab-token': secret },
            ]
          : [
              { 'x-gitlab-event': 'Merge Request Hook' },
              { 'x-gitlab-event': 'Merge Request Hook', 'x-gitlab-token': `${secret}x` },
              { 'x-gitlab-event': 'Merge Request Hook', 'x-gitlab-token': secret.slice(1) },
            ];
      for (const headers of forgeries) {
        const forged = await github.rawDelivery(body, headers);
        assert.equal(forged.status, 401, forged.text);
      }
      const none = await call(server, 'GET', '/api/v1/apps/expense-claims/changes', { token: t.alice });
      assert.deepEqual(none.body.items, [], 'no forged delivery opened a change');

      const opened = await github.openPull(full, 'cost-centre', 'Ask for the cost centre');
      assert.equal(opened.status, 202, JSON.stringify(opened.answer));
      assert.equal((opened.answer as { handled: boolean }).handled, true, JSON.stringify(opened.answer));

      const checked = await until(1, (c) => c.checks[0]?.state !== 'pending');
      assert.equal(checked.checks[0]!.state, 'passed', JSON.stringify(checked.checks));
      assert.equal(checked.head, head);
      assert.deepEqual(checked.hostChange, {
        number: opened.number,
        url: github.pullUrl(full, opened.number),
      });
      assert.equal(checked.state, 'open', 'medium tier: a reviewer must approve first');
      assert.equal(
        await github.head(full),
        checked.head === head ? await github.head(full) : '',
        'main untouched',
      );
      const reported = github.statuses.filter((s) => s.sha === head);
      assert.deepEqual(
        reported.map((s) => s.state),
        ['pending', 'success'],
      );
      assert.equal(reported[1]!.context, 'microapp/pipeline');
      assert.equal(reported[1]!.url, `${server.url}/apps/expense-claims/changes/1`);

      // Pushing to the platform's copy instead of the host is refused, and says where to push.
      const direct = await fetch(`${server.url}/git/expense-claims.git/info/refs?service=git-receive-pack`, {
        headers: { authorization: `Bearer ${t.alice}` },
      });
      assert.equal(direct.status, 409);
      assert.match(
        ((await direct.json()) as { detail: string }).detail,
        new RegExp(`lives at ${hostName} .*open a pull request`),
      );

      const before = await github.head(full);
      const approved = await call(server, 'POST', '/api/v1/apps/expense-claims/changes/1/reviews', {
        token: t.bob,
        body: { decision: 'approved', head },
      });
      assert.equal(approved.status, 200, approved.text);
      const shipped = await until(
        1,
        (c) => c.release?.state === 'passed' || c.release?.state === 'failed' || c.problem !== null,
      );
      assert.equal(shipped.release?.state, 'passed', JSON.stringify(shipped, null, 2));
      const main = await github.head(full);
      assert.notEqual(main, before, 'the host merged it');
      assert.equal(shipped.merged?.commit, main, 'what shipped is the merge commit the host made');
      assert.equal(shipped.cloneUrl, `${github.url}/git/${full}.git`);
      const page = await viaGateway(server, 'expense-claims', '/', { authorization: `Bearer ${t.dave}` });
      assert.match(page.body, /Cost centre/);
      // The signed provenance names the host's repository and the merge commit.
      const version = await call(
        server,
        'GET',
        `/api/v1/apps/expense-claims/versions/${shipped.release!.version}`,
        {
          token: t.bob,
        },
      );
      const definition = version.body.provenance.predicate.buildDefinition;
      assert.deepEqual(
        definition.resolvedDependencies.find((d: { digest: { gitCommit?: string } }) => d.digest.gitCommit),
        { uri: `git+${github.url}/git/${full}.git@refs/heads/main`, digest: { gitCommit: main } },
      );
      assert.deepEqual(github.violations, []);
    });

    test('the console’s Deploy opens the pull request at the host itself, and follows it to live', async () => {
      const repo = await call(server, 'GET', '/api/v1/apps/expense-claims/repository', { token: t.alice });
      const fields = [
        ...repo.body.form,
        { id: 'receipt_total', label: 'Receipt total', required: true, max: 20, type: 'amount' },
      ];
      const deploy = await call(server, 'POST', '/api/v1/apps/expense-claims/changes', {
        token: t.alice,
        body: { fields },
      });
      assert.equal(deploy.status, 201, deploy.text);
      const n = deploy.body.number;
      const checked = await until(n, (c) => c.checks[0]?.state !== 'pending');
      assert.equal(checked.checks[0]!.state, 'passed', JSON.stringify(checked.checks));
      // The host has the branch and the pull request, and hears the check's result on its head.
      assert.equal(await github.head(full, deploy.body.branch), checked.head);
      assert.ok(
        github.statuses.some((s) => s.sha === checked.head && s.state === 'success'),
        JSON.stringify(github.statuses),
      );
      const approved = await call(server, 'POST', `/api/v1/apps/expense-claims/changes/${n}/reviews`, {
        token: t.bob,
        body: { decision: 'approved', head: checked.head },
      });
      assert.equal(approved.status, 200, approved.text);
      const shipped = await until(
        n,
        (c) => ['passed', 'failed'].includes(c.release?.state ?? '') || c.problem !== null,
      );
      assert.equal(shipped.release?.state, 'passed', JSON.stringify(shipped, null, 2));
      assert.equal(shipped.merged?.commit, await github.head(full));
      const page = await viaGateway(server, 'expense-claims', '/', { authorization: `Bearer ${t.dave}` });
      assert.match(page.body, /Receipt total/);
      assert.deepEqual(github.violations, []);
    });

    test('a pull request merged at the host around the rule closes, is audited, and ships nothing', async () => {
      const clone = join(dir, 'dev');
      await gitCli(clone, ['fetch', '--quiet', 'origin']);
      await gitCli(clone, ['checkout', '--quiet', '-B', 'shortcut', 'origin/main']);
      writeFileSync(join(clone, 'README.md'), 'merged without a review\n');
      await gitCli(clone, ['commit', '-qam', 'Skip the review']);
      assert.equal((await gitCli(clone, ['push', '--quiet', 'origin', 'HEAD:refs/heads/shortcut'])).code, 0);
      const opened = await github.openPull(full, 'shortcut', 'Skip the review');
      const n = (opened.answer as { change: number }).change;
      const versions = async () =>
        (await call(server, 'GET', '/api/v1/apps/expense-claims/versions', { token: t.alice })).body.items
          .length;
      const before = await versions();
      assert.ok(await github.mergeAtHost(full, opened.number));
      const closed = await until(n, (c) => c.state !== 'open');
      assert.equal(closed.state, 'closed');
      assert.equal(closed.merged, null);
      const events = await call(server, 'GET', '/api/v1/audit/events?action=change.merged_at_host', {
        token: t.ivan,
      });
      assert.equal(events.body.items.length, 1, events.text);
      assert.match(events.body.items[0].reason, /outside the platform's rule; nothing of it ships/);
      // Its check may still finish; nothing is published from it.
      await until(n, (c) => c.checks[0]?.state !== 'pending');
      assert.equal(await versions(), before);
    });
  });

describe('a git host that names another host as a repository’s address', () => {
  test('gets no token: the repository is not made, and the refusal says why', async () => {
    const token = 'ghp_standin_platform_token_0123456789';
    const secret = 'whsec-standin-0123456789-abcdefghij';
    const evil = await startGitHostStandIn({
      kind: 'github',
      token,
      webhook: { url: () => 'http://127.0.0.1:9/', secret },
      templates: { 'acme/microapp-template-form': { 'README.md': '# A form\n' } },
      // Same machine, another name: were the platform to follow it, it would send the token there.
      cloneHost: 'localhost',
    });
    const files = mkdtempSync(join(tmpdir(), 'microapp-github-'));
    writeFileSync(join(files, 'token'), token, { mode: 0o600 });
    writeFileSync(join(files, 'secret'), secret, { mode: 0o600 });
    const { server, t, stop } = await startBuildServer({
      MICROAPP_GIT_HOST: 'github',
      MICROAPP_GIT_HOST_API_URL: evil.url,
      MICROAPP_GIT_HOST_OWNER: 'acme-apps',
      MICROAPP_GIT_HOST_TEMPLATES: 'form=acme/microapp-template-form',
      MICROAPP_GIT_HOST_TOKEN_FILE: join(files, 'token'),
      MICROAPP_GIT_HOST_WEBHOOK_SECRET_FILE: join(files, 'secret'),
    });
    try {
      const reg = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: lunchPoll({
          name: 'expense-claims',
          owner: people.alice,
          runtime: { kind: 'node', entry: 'server.js' },
          template: { name: 'form', version: '1.2.0' },
        }),
      });
      assert.equal(reg.status, 201, reg.text);
      const repo = await call(server, 'GET', '/api/v1/apps/expense-claims/repository', { token: t.alice });
      assert.equal(repo.status, 503, repo.text);
      assert.match(repo.body.detail, /is not GitHub's own: the platform's token goes nowhere else/);
      assert.deepEqual(evil.gitRequests, [], 'git never reached the address it was given');
    } finally {
      await stop();
      await evil.close();
      rmSync(files, { recursive: true, force: true });
    }
  });
});
