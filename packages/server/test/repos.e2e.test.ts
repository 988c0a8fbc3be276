import assert from 'node:assert/strict';
import { readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { agentToken } from './agent-client.ts';
import { gitCli, withToken } from './git-client.ts';
import {
  call,
  lunchPoll,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

type Change = {
  number: number;
  state: string;
  head: string;
  checks: { state: string; detail: string; build: string | null }[];
  reviews: { missing: unknown[] };
  merged: { commit: string; by: string } | null;
  release: { build: string; state: string; version: string | null; error: string | null } | null;
  problem: string | null;
  confirmation: { state: string; checkpoint: string | null } | null;
};

/**
 * The repository flow end to end, with real builds: clone with a token, push a branch, the change
 * request's pipeline, the tier's rule (a reviewer for medium, nobody for low), the merge, and the merged
 * commit built, signed, deployed and named by its provenance.
 */
describe('change requests ship through the pipeline', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let dir: string;
  let stop: () => Promise<void>;

  const register = async (name: string, dataClasses: string[]) => {
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({
        name,
        owner: people.alice,
        purpose: 'Collect the questions for the quarterly finance town hall',
        dataClasses,
        runtime: { kind: 'node', entry: 'server.js' },
        template: { name: 'form', version: '1.1.0' },
      }),
    });
    assert.equal(reg.status, 201, reg.text);
    return reg.body.app;
  };

  const cloneOf = async (name: string) => {
    const repo = await call(server, 'GET', `/api/v1/apps/${name}/repository`, { token: t.alice });
    const r = await gitCli(dir, ['clone', '--quiet', withToken(repo.body.cloneUrl, t.alice), name]);
    assert.equal(r.code, 0, r.stderr);
    return join(dir, name);
  };

  const addQuestion = async (clone: string, label: string, branch: string) => {
    const form = JSON.parse(readFileSync(join(clone, 'form.json'), 'utf8'));
    form.fields.push({ id: `q${form.fields.length}`, label, required: false, max: 200 });
    writeFileSync(join(clone, 'form.json'), JSON.stringify(form, null, 2));
    await gitCli(clone, ['commit', '-am', `Ask: ${label}`]);
    const push = await gitCli(clone, ['push', 'origin', `HEAD:refs/heads/${branch}`]);
    assert.equal(push.code, 0, push.stderr);
  };

  /** Polls a change request until `done` holds for it. */
  const until = async (name: string, n: number, done: (c: Change) => boolean): Promise<Change> => {
    for (let i = 0; ; i++) {
      const res = await call<Change>(server, 'GET', `/api/v1/apps/${name}/changes/${n}`, { token: t.alice });
      assert.equal(res.status, 200, res.text);
      if (done(res.body)) return res.body;
      if (i > 3000) throw new Error(`change ${name}#${n} never got there: ${res.text.slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const checked = (c: Change) => c.checks[0]?.state !== 'pending';
  const released = (c: Change) =>
    c.release !== null && ['passed', 'failed'].includes(c.release.state) ? true : c.problem !== null;

  before(async () => {
    ({ server, t, dir, stop } = await startBuildServer({
      MICROAPP_KUBERNETES_RUNTIME_IMAGE: `registry.example.com/node@sha256:${'cd'.repeat(32)}`,
      // A bank's rule: every shipped version went through a reviewed change. The flows below ship anyway.
      MICROAPP_SHIP_ONLY_MERGED_CHANGES: 'on',
    }));
  });
  after(async () => {
    await stop();
  });

  test('a medium-tier change merges only after a reviewer approves, then goes live from the merged commit', async () => {
    await register('town-hall', ['internal', 'confidential']);
    const review = await call(server, 'POST', '/api/v1/apps/town-hall/reviews', {
      token: t.bob,
      body: { decision: 'approve' },
    });
    assert.equal(review.status, 200, review.text);
    const clone = await cloneOf('town-hall');
    await addQuestion(clone, 'Which figure should the CFO explain?', 'cfo-question');

    const green = await until('town-hall', 1, checked);
    assert.equal(green.checks[0]!.state, 'passed', JSON.stringify(green, null, 2));
    assert.equal(green.state, 'open', 'checks alone do not merge a medium-tier change');
    assert.equal(green.reviews.missing.length, 1);
    // The check ran the whole pipeline but published nothing: only a merge ships.
    const build = await call(server, 'GET', `/api/v1/apps/town-hall/builds/${green.checks[0]!.build}`, {
      token: t.alice,
    });
    assert.equal(build.body.steps.find((s: { step: string }) => s.step === 'test')?.status, 'passed');
    assert.notEqual(build.body.steps.find((s: { step: string }) => s.step === 'publish')?.status, 'passed');
    assert.equal(build.body.commit.sha, green.head);
    const versions = await call(server, 'GET', '/api/v1/apps/town-hall/versions', { token: t.alice });
    assert.deepEqual(versions.body.items, []);
    const notLive = await viaGateway(server, 'town-hall', '/', { authorization: `Bearer ${t.dave}` });
    assert.notEqual(notLive.status, 200);

    const approved = await call(server, 'POST', '/api/v1/apps/town-hall/changes/1/reviews', {
      token: t.bob,
      body: { decision: 'approved', head: green.head, comment: 'Reads well' },
    });
    assert.equal(approved.status, 200, approved.text);
    assert.equal(approved.body.state, 'merged');
    assert.equal(approved.body.merged.commit, green.head, 'main had not moved: a fast-forward');

    const shipped = await until('town-hall', 1, released);
    assert.equal(shipped.release?.state, 'passed', JSON.stringify(shipped, null, 2));
    const page = await viaGateway(server, 'town-hall', '/', { authorization: `Bearer ${t.dave}` });
    assert.equal(page.status, 200, page.body);
    assert.match(page.body, /Which figure should the CFO explain\?/);

    // The signed provenance names the repository and the merged commit.
    const version = await call(server, 'GET', `/api/v1/apps/town-hall/versions/${shipped.release!.version}`, {
      token: t.bob,
    });
    const definition = version.body.provenance.predicate.buildDefinition;
    assert.deepEqual(
      definition.resolvedDependencies.find((d: { digest: { gitCommit?: string } }) => d.digest.gitCommit),
      {
        uri: `git+${server.url}/git/town-hall.git@refs/heads/main`,
        digest: { gitCommit: green.head },
      },
    );
    assert.equal(definition.externalParameters.source.commit, green.head);
    const verified = await call(
      server,
      'GET',
      `/api/v1/apps/town-hall/versions/${shipped.release!.version}/verification`,
      { token: t.bob },
    );
    assert.equal(verified.body.ok, true, verified.text);
    const merged = await call(server, 'GET', '/api/v1/audit/events?action=change.merged', { token: t.ivan });
    assert.equal(merged.body.items.length, 1);
    assert.deepEqual(merged.body.items[0].summary.approvals, [people.bob]);
    assert.equal(merged.body.items[0].actor, people.bob);
    const main = await call(server, 'GET', '/api/v1/apps/town-hall/repository', { token: t.alice });
    assert.equal(main.body.head, green.head);

    // The Kubernetes driver commits the version's objects to the GitOps repository, as a merged change.
    const rendered = await call(server, 'POST', '/api/v1/apps/town-hall/kubernetes-manifests', {
      token: t.alice,
      body: { version: shipped.release!.version },
    });
    assert.equal(rendered.status, 200, rendered.text);
    assert.equal(rendered.body.gitops.path, 'apps/town-hall');
    assert.equal(rendered.body.gitops.change, 1);
    const gitops = await call(server, 'GET', '/api/v1/gitops', { token: t.carol });
    assert.equal(gitops.body.head, rendered.body.gitops.commit);
    assert.equal(gitops.body.cloneUrl, `${server.url}/git/_gitops.git`);
    assert.equal((await call(server, 'GET', '/api/v1/gitops', { token: t.alice })).status, 403);
    const ops = await gitCli(dir, ['clone', '--quiet', withToken(gitops.body.cloneUrl, t.carol), 'gitops']);
    assert.equal(ops.code, 0, ops.stderr);
    const deployment = readFileSync(join(dir, 'gitops', 'apps', 'town-hall', 'deployment.yaml'), 'utf8');
    // The namespace apps run in comes with it: Pod Security restricted, everything denied by default.
    assert.match(
      readFileSync(join(dir, 'gitops', 'namespace', 'namespace.yaml'), 'utf8'),
      /pod-security\.kubernetes\.io\/enforce: restricted/,
    );
    assert.match(deployment, new RegExp(version.body.digest.replace('sha256:', '')));
    const log = await gitCli(join(dir, 'gitops'), ['log', '-1', '--format=%s']);
    assert.equal(
      log.stdout.trim(),
      `Deploy town-hall@${shipped.release!.version} (live) ${version.body.digest}`,
    );
    // Nobody pushes there but the platform, and a creator cannot even read it.
    await gitCli(join(dir, 'gitops'), ['commit', '--allow-empty', '-m', 'sneak']);
    const pushed = await gitCli(join(dir, 'gitops'), ['push', 'origin', 'HEAD:refs/heads/sneak']);
    assert.match(pushed.stderr, /403/);
    const creator = await gitCli(dir, ['clone', '--quiet', withToken(gitops.body.cloneUrl, t.alice), 'nope']);
    assert.match(creator.stderr, /403/);
  });

  test('a low-tier change merges itself once green; a failing test or a symlink never merges', async () => {
    await register('kudos-board', ['internal']);
    const clone = await cloneOf('kudos-board');

    // A change that breaks the app's own test.
    writeFileSync(
      join(clone, 'test', 'broken.test.js'),
      "import { test } from 'node:test';\ntest('x', () => { throw new Error('broken on purpose'); });\n",
    );
    await gitCli(clone, ['add', '-A']);
    await gitCli(clone, ['commit', '-m', 'Break the tests']);
    assert.equal((await gitCli(clone, ['push', 'origin', 'HEAD:refs/heads/broken'])).code, 0);
    const red = await until('kudos-board', 1, checked);
    assert.equal(red.checks[0]!.state, 'failed');
    assert.match(red.checks[0]!.detail, /the test step failed/);
    assert.equal(red.state, 'open');
    assert.equal(red.merged, null);

    // A change that smuggles a link to the host's files into the build.
    await gitCli(clone, ['reset', '--hard', 'origin/main']);
    symlinkSync('/etc/passwd', join(clone, 'passwd.txt'));
    await gitCli(clone, ['add', 'passwd.txt']);
    await gitCli(clone, ['commit', '-m', 'Read the host']);
    assert.equal((await gitCli(clone, ['push', 'origin', 'HEAD:refs/heads/link'])).code, 0);
    const link = await until('kudos-board', 2, checked);
    assert.equal(link.checks[0]!.state, 'failed');
    assert.match(
      link.checks[0]!.detail,
      /passwd\.txt is a SymbolicLink; only files and folders are accepted/,
    );

    // A good change: merged by the rule, then built, signed and deployed.
    await gitCli(clone, ['reset', '--hard', 'origin/main']);
    await addQuestion(clone, 'Who helped you this week?', 'helper');
    const shipped = await until('kudos-board', 3, released);
    assert.equal(shipped.state, 'merged');
    assert.match(shipped.merged!.by, /low tier, checks passed/);
    assert.equal(shipped.release?.state, 'passed', JSON.stringify(shipped, null, 2));
    const page = await viaGateway(server, 'kudos-board', '/', { authorization: `Bearer ${t.dave}` });
    assert.match(page.body, /Who helped you this week\?/);
    rmSync(clone, { recursive: true, force: true });
  });
  test('an agent’s change of a low-tier app passes its checks and waits for its person; confirmed, it goes live', async () => {
    await register('lunch-orders', ['internal']);
    const agent = await agentToken(server, people.alice, { name: 'Claude Code' });
    const repo = await call(server, 'GET', '/api/v1/apps/lunch-orders/repository', { token: t.alice });
    const r = await gitCli(dir, ['clone', '--quiet', withToken(repo.body.cloneUrl, agent), 'lunch-orders']);
    assert.equal(r.code, 0, r.stderr);
    const clone = join(dir, 'lunch-orders');
    await addQuestion(clone, 'Anything you cannot eat?', 'allergies');

    // Green, and low tier, which merges a person's change at once: an agent's waits for its person.
    const green = await until('lunch-orders', 1, checked);
    assert.equal(green.checks[0]!.state, 'passed', JSON.stringify(green.checks));
    await new Promise((done) => setTimeout(done, 500));
    const waiting = await until('lunch-orders', 1, () => true);
    assert.equal(waiting.state, 'open');
    assert.equal(waiting.merged, null);
    assert.equal(waiting.confirmation?.state, 'waiting');

    const confirmed = await call(
      server,
      'POST',
      `/api/v1/agents/requests/${waiting.confirmation!.checkpoint}/approve`,
      { token: t.alice, body: { note: 'fine for Friday' } },
    );
    assert.equal(confirmed.status, 200, confirmed.text);
    const shipped = await until('lunch-orders', 1, released);
    assert.equal(shipped.state, 'merged');
    assert.match(shipped.merged!.by, /alice@example\.com confirmed what Claude Code pushed/);
    assert.equal(shipped.release?.state, 'passed', JSON.stringify(shipped, null, 2));
    const page = await viaGateway(server, 'lunch-orders', '/', { authorization: `Bearer ${t.dave}` });
    assert.match(page.body, /Anything you cannot eat\?/);
    const merged = await call(server, 'GET', '/api/v1/audit/events?action=change.merged', { token: t.ivan });
    const event = merged.body.items.find((e: { target: string }) => e.target === 'lunch-orders');
    assert.equal(event.summary.confirmedBy, people.alice);
    assert.equal(event.summary.checkpoint, waiting.confirmation!.checkpoint);
    const spent = await call(server, 'GET', `/api/v1/agents/requests/${waiting.confirmation!.checkpoint}`, {
      token: t.alice,
    });
    assert.equal(spent.body.state, 'used', 'the confirmation was spent by this merge');
    rmSync(clone, { recursive: true, force: true });
  });

  test('where only merged changes ship, a version built anywhere else is refused, and says how to ship', async () => {
    await register('side-door', ['internal']);
    const artifact = await sourceArchive({
      'package.json': JSON.stringify({ name: 'side-door', version: '1.0.0' }),
      'server.js': "require('node:http').createServer((q, s) => s.end('hi')).listen(process.env.PORT);\n",
    });
    const direct = await call(server, 'POST', '/api/v1/apps/side-door/versions', {
      token: t.alice,
      body: {
        version: '1.0.0',
        artifact,
        sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [] },
      },
    });
    assert.equal(direct.status, 409, direct.text);
    assert.match(
      direct.body.detail,
      /ships only what a merged change request built: push your change to a branch/,
    );
    const versions = await call(server, 'GET', '/api/v1/apps/side-door/versions', { token: t.alice });
    assert.deepEqual(versions.body.items, [], 'nothing signed');
  });
});
