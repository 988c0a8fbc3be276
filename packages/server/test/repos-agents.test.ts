import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { agentToken } from './agent-client.ts';
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

type Confirmation = { person: string; agent: string; checkpoint: string | null; state: string };

/**
 * Agents at the git server, as an attacker and a busy person meet them, on both databases. An agent's
 * token clones what its person may read and pushes a branch of its person's app, within its delegation;
 * what it pushes waits for the person's confirmation of that exact commit. No build runs here (the app
 * waits for its review); repos.e2e.test.ts confirms, merges and ships an agent's change.
 */
for (const engine of engines()) {
  describe(`agents at the git server (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    let work: string;
    let url: string;
    let alicesAgent: string;

    before(async () => {
      server = await startTestServer(engine);
      t = await signInEveryone(server);
      work = mkdtempSync(join(tmpdir(), 'microapp-agent-git-'));
      const reg = await call(server, 'POST', '/api/v1/apps', {
        token: t.alice,
        body: lunchPoll({
          name: 'travel-requests',
          owner: people.alice,
          purpose: 'Ask for approval of business travel before booking it',
          dataClasses: ['internal', 'confidential'],
          runtime: { kind: 'node', entry: 'server.js' },
          template: { name: 'form', version: '1.2.0' },
        }),
      });
      assert.equal(reg.status, 201, reg.text);
      url = (await call(server, 'GET', '/api/v1/apps/travel-requests/repository', { token: t.alice })).body
        .cloneUrl;
      alicesAgent = await agentToken(server, people.alice, { name: 'Claude Code' });
    });
    after(async () => {
      await server.stop();
      rmSync(work, { recursive: true, force: true });
    });

    const clone = (token: string, name: string) =>
      gitCli(work, ['clone', '--quiet', withToken(url, token), name]).then((r) => ({
        ...r,
        dir: join(work, name),
      }));
    const changeOf = async (n: number) =>
      (await call(server, 'GET', `/api/v1/apps/travel-requests/changes/${n}`, { token: t.alice })).body;

    test('an agent reads what its person may read, and nothing else', async () => {
      const mine = await clone(alicesAgent, 'agent');
      assert.equal(mine.code, 0, mine.stderr);
      assert.ok(readFileSync(join(mine.dir, 'microapp.yaml'), 'utf8').includes('travel-requests'));

      // Frank works in marketing: to his agent, as to him, finance's app does not exist.
      const franks = await clone(await agentToken(server, people.frank), 'frank');
      assert.notEqual(franks.code, 0);
      assert.match(franks.stderr, /not found|404/);
      // A made-up agent token, and one whose delegation was revoked, are refused with the challenge.
      const forged = await fetch(`${url}/info/refs?service=git-upload-pack`, {
        headers: { authorization: `Basic ${Buffer.from(`x:maa_${'A'.repeat(43)}`).toString('base64')}` },
      });
      assert.equal(forged.status, 401);
      assert.match(forged.headers.get('www-authenticate') ?? '', /^Basic realm="microapp"/);
      const revokedToken = await agentToken(server, people.alice, { name: 'old-agent' });
      const delegations = await call(server, 'GET', '/api/v1/agents', { token: t.alice });
      const old = delegations.body.items.find(
        (d: { agent: { client: string } }) => d.agent.client === 'old-agent',
      );
      assert.equal(
        (await call(server, 'DELETE', `/api/v1/agents/${old.id}`, { token: t.alice })).status,
        200,
      );
      const revoked = await clone(revokedToken, 'revoked');
      assert.notEqual(revoked.code, 0);
      assert.match(revoked.stderr, /Authentication failed|401/);
      // The GitOps repository is for admins, auditors and reviewers; an agent is none of them.
      const gitops = await fetch(
        url.replace('travel-requests.git', '_gitops.git/info/refs?service=git-upload-pack'),
        {
          headers: { authorization: `Bearer ${alicesAgent}` },
        },
      );
      assert.equal(gitops.status, 403);
    });

    test('an agent pushes only a branch, of its person’s app, with the build scope', async () => {
      const dir = join(work, 'agent');
      writeFileSync(join(dir, 'README.md'), 'straight to main\n');
      await gitCli(dir, ['commit', '-am', 'Skip the review']);
      const direct = await gitCli(dir, ['push', 'origin', 'HEAD:main']);
      assert.notEqual(direct.code, 0);
      assert.match(direct.stderr, /main is protected: push your change to a branch/);

      // Dave is in finance and may read the app, but it is Alice's: his agent cannot push to it.
      const daves = await clone(await agentToken(server, people.dave), 'dave');
      assert.equal(daves.code, 0, daves.stderr);
      await gitCli(daves.dir, ['commit', '--allow-empty', '-m', 'Take over']);
      const davePush = await gitCli(daves.dir, ['push', 'origin', 'HEAD:refs/heads/takeover']);
      assert.notEqual(davePush.code, 0);
      assert.match(davePush.stderr, /403/);

      // An agent Alice allowed to read only.
      const reader = await clone(await agentToken(server, people.alice, { scope: 'apps:read' }), 'reader');
      assert.equal(reader.code, 0, reader.stderr);
      await gitCli(reader.dir, ['commit', '--allow-empty', '-m', 'Try']);
      const readerPush = await gitCli(reader.dir, ['push', 'origin', 'HEAD:refs/heads/try']);
      assert.notEqual(readerPush.code, 0);
      const refusal = await fetch(`${url}/info/refs?service=git-receive-pack`, {
        headers: {
          authorization: `Bearer ${await agentToken(server, people.alice, { scope: 'apps:read' })}`,
        },
      });
      assert.equal(refusal.status, 403);
      assert.match(
        ((await refusal.json()) as { detail: string }).detail,
        /the agents policy refuses pushing to travel-requests's repository: this delegation does not include apps:build/,
      );
      const changes = await call(server, 'GET', '/api/v1/apps/travel-requests/changes', { token: t.alice });
      assert.deepEqual(changes.body.items, [], 'no refused push opened a change');
      const refused = await call(server, 'GET', '/api/v1/audit/events?action=agent.called', {
        token: t.ivan,
      });
      assert.ok(
        refused.body.items.some(
          (e: { summary: { tool: string; outcome: string } }) =>
            e.summary.tool === 'push_change' && e.summary.outcome === 'refused',
        ),
        'the refused push is the agent’s recorded call',
      );
    });

    test('what an agent pushes waits for its person to confirm that commit', async () => {
      const dir = join(work, 'agent');
      await gitCli(dir, ['reset', '--hard', 'origin/main']);
      const form = JSON.parse(readFileSync(join(dir, 'form.json'), 'utf8'));
      form.fields.push({ id: 'destination', label: 'Destination', required: true, max: 100 });
      writeFileSync(join(dir, 'form.json'), JSON.stringify(form, null, 2));
      await gitCli(dir, ['commit', '-am', 'Ask where to']);
      const push = await gitCli(dir, ['push', 'origin', 'HEAD:refs/heads/destination']);
      assert.equal(push.code, 0, push.stderr);

      const cr = await changeOf(1);
      assert.equal(cr.state, 'open');
      assert.equal(cr.openedBy, people.alice);
      const confirmation = cr.confirmation as Confirmation;
      assert.equal(confirmation.state, 'waiting');
      assert.equal(confirmation.person, people.alice);
      assert.equal(confirmation.agent, 'Claude Code');
      // The person's request names the change and the exact commit, and says why it asks.
      const waiting = await call(server, 'GET', '/api/v1/agents/requests?state=pending', { token: t.alice });
      const ask = waiting.body.items.find((c: { id: string }) => c.id === confirmation.checkpoint);
      assert.ok(ask, waiting.text);
      assert.equal(ask.tool, 'merge_change');
      assert.deepEqual(
        { app: ask.input.app, change: ask.input.change, head: ask.input.head },
        { app: 'travel-requests', change: 1, head: cr.head },
      );
      assert.match(ask.reasons[0], /merges what the agent pushed into main/);
      const opened = await call(server, 'GET', '/api/v1/audit/events?action=change.opened', {
        token: t.ivan,
      });
      assert.equal(opened.body.items[0].summary.agent, 'Claude Code');
      assert.ok(opened.body.items[0].summary.act, 'the audit event names the agent beside the person');

      // The agent cannot answer for its person: its token does not reach the API.
      const self = await call(server, 'POST', `/api/v1/agents/requests/${ask.id}/approve`, {
        token: alicesAgent,
      });
      assert.equal(self.status, 403);

      // A new push is a new commit: the confirmation asked is for that commit, not the earlier one.
      writeFileSync(join(dir, 'README.md'), 'travel\n');
      await gitCli(dir, ['commit', '-am', 'Say so']);
      assert.equal((await gitCli(dir, ['push', 'origin', 'HEAD:refs/heads/destination'])).code, 0);
      const moved = await changeOf(1);
      assert.notEqual(moved.head, cr.head);
      assert.notEqual(moved.confirmation.checkpoint, confirmation.checkpoint);
      // Confirming the earlier commit confirms nothing now.
      await call(server, 'POST', `/api/v1/agents/requests/${confirmation.checkpoint}/approve`, {
        token: t.alice,
      });
      assert.equal((await changeOf(1)).confirmation.state, 'waiting');

      // Alice refuses; the change says so. When she pushes the branch herself, it is hers to vouch for.
      const refused = await call(
        server,
        'POST',
        `/api/v1/agents/requests/${moved.confirmation.checkpoint}/refuse`,
        { token: t.alice, body: { note: 'not before the travel policy changes' } },
      );
      assert.equal(refused.status, 200, refused.text);
      const held = await changeOf(1);
      assert.equal(held.confirmation.state, 'refused');
      assert.equal(held.state, 'open');
      const alice = await clone(t.alice, 'alice');
      await gitCli(alice.dir, ['fetch', 'origin', 'destination']);
      await gitCli(alice.dir, ['checkout', '-b', 'destination', 'FETCH_HEAD']);
      await gitCli(alice.dir, ['commit', '--allow-empty', '-m', 'Reviewed it myself']);
      assert.equal((await gitCli(alice.dir, ['push', 'origin', 'HEAD:refs/heads/destination'])).code, 0);
      assert.equal((await changeOf(1)).confirmation, null);

      // The agent's pushes are its calls: they count against the day's builds.
      const delegations = await call(server, 'GET', '/api/v1/agents', { token: t.alice });
      const claude = delegations.body.items.find(
        (d: { agent: { client: string } }) => d.agent.client === 'Claude Code',
      );
      assert.ok(claude.calls >= 4, JSON.stringify(claude));
    });
  });
}
