// A person and their AI agent, the whole way: dave consents on the platform's own page when his agent
// connects through MCP with the official SDK; the agent takes a template to a running preview; its change
// that adds personal data and an outside host waits until dave approves it on the Agents page; then it
// tries to approve its own app, read a secret and deploy to live, and is refused each time with a reason.
// Both pages are scanned with axe-core.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parse as parseYaml } from 'yaml';
import { agentToken, callTool, MemoryOAuthProvider } from '../../server/test/agent-client.ts';
import { gitCli, withToken } from '../../server/test/git-client.ts';
import { call, lunchPoll, viaGateway } from '../../server/test/harness.ts';
import { type ConsoleRig, startConsoleRig } from './console-harness.ts';

describe('an agent builds for dave through MCP, held at a checkpoint until he approves in the console', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig();
  });
  after(() => rig?.stop());

  test('dave consents; the agent runs a preview, waits for his approval, and is refused what it may never do', async () => {
    const { context, page, errors } = await rig.signedIn('dave@example.com');
    const provider = new MemoryOAuthProvider({
      name: 'Claude Code',
      version: '2.1.0',
      model: 'claude-sonnet-4-5',
    });
    const url = new URL('/mcp', rig.server.url);
    await assert.rejects(
      new Client({ name: 'Claude Code', version: '2.1.0' }).connect(
        new StreamableHTTPClientTransport(url, { authProvider: provider }),
      ),
      UnauthorizedError,
    );
    // The agent's loopback listener, as Claude Code runs one: the browser lands there with the code.
    await page.route(`${provider.redirectUrl}**`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/plain', body: 'You can close this window.' }),
    );
    await page.goto(provider.authorizationUrl!.href);
    await page
      .getByRole('heading', { level: 1, name: /Allow the agent Claude Code to act for you/ })
      .waitFor();
    await rig.accessible(page, 'the consent page');
    await rig.shot(page, 'agent-consent');
    const [callback] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith(provider.redirectUrl)),
      page.getByRole('button', { name: 'Allow' }).click(),
    ]);
    const code = new URL(callback.url()).searchParams.get('code');
    assert.ok(code, callback.url());
    await new StreamableHTTPClientTransport(url, { authProvider: provider }).finishAuth(code);
    const agent = new Client({ name: 'Claude Code', version: '2.1.0' });
    await agent.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));

    const scaffold = await callTool(agent, 'scaffold_app', { template: 'form', name: 'visitor-log' });
    const manifest = parseYaml(scaffold.data.files['microapp.yaml']);
    assert.equal((await callTool(agent, 'register_app', { manifest })).data.state, 'approved');
    // From the template to a running preview, through the same pipeline as a person's build.
    const progress: string[] = [];
    const built = await callTool(
      agent,
      'build_app',
      { name: 'visitor-log', files: scaffold.data.files },
      {
        onprogress: (p) => progress.push(p.message ?? ''),
        timeout: 15 * 60_000,
        resetTimeoutOnProgress: true,
      },
    );
    assert.equal(built.data.state, 'passed', built.text);
    assert.ok(progress.length >= 3, progress.join(' | '));
    const deployed = await callTool(agent, 'deploy_app', {
      name: 'visitor-log',
      version: built.data.version,
      environment: 'preview',
    });
    assert.equal(deployed.isError, false, deployed.text);
    let preview = { status: 0, body: '' };
    for (let i = 0; i < 50 && preview.status !== 200; i++) {
      preview = await viaGateway(rig.server, 'visitor-log--preview', '/', {
        authorization: `Bearer ${rig.tokens.dave}`,
      });
      if (preview.status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(preview.status, 200, preview.body.slice(0, 200));
    const wider = {
      ...manifest,
      dataClasses: ['internal', 'pii'],
      integrations: { egress: ['api.bank.example.com'] },
    };
    const held = await callTool(agent, 'register_app', { manifest: wider });
    assert.equal(held.data.status, 'waiting_for_approval', held.text);

    // The link the agent was given is the request's own page; the Agents page lists it too.
    await page.goto(held.data.url);
    await page
      .getByRole('heading', {
        level: 3,
        name: /Claude Code asks to register or change an app \(visitor-log\)/,
      })
      .waitFor();
    await page.getByText('pii', { exact: false }).first().waitFor();
    await page.getByText('api.bank.example.com', { exact: true }).waitFor();
    await page.getByRole('link', { name: 'Agents (1 waiting)' }).waitFor();
    await page.goto(`${rig.server.url}/agents`);
    await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    await page.getByRole('cell', { name: 'claude-sonnet-4-5' }).waitFor();
    await rig.accessible(page, 'the Agents page');
    await rig.shot(page, 'agent-requests');
    await page.getByLabel('A note for the record (optional)').fill('fine for the visitor pilot');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'Approved: Claude Code goes on at its next call.' })
      .first()
      .waitFor();

    const through = await callTool(agent, 'register_app', { manifest: wider });
    assert.equal(through.isError, false, through.text);
    const app = await call(rig.server, 'GET', '/api/v1/apps/visitor-log', { token: rig.tokens.dave });
    assert.deepEqual(app.body.manifest.dataClasses, ['internal', 'pii']);

    // What an agent never does, each refused with a reason it can act on.
    const agentToken = provider.saved!.access_token;
    const approve = await call(rig.server, 'POST', '/api/v1/apps/visitor-log/reviews', {
      token: agentToken,
      body: { decision: 'approve' },
    });
    assert.equal(approve.status, 403);
    assert.match(approve.body.detail, /never approve, read secrets or deploy to live/);
    const secret = await call(rig.server, 'GET', '/api/v1/apps/visitor-log/secrets', { token: agentToken });
    assert.equal(secret.status, 403);
    assert.match(secret.body.detail, /ask the person the agent acts for/);
    const live = await callTool(agent, 'deploy_app', {
      name: 'visitor-log',
      version: built.data.version,
      environment: 'live',
    });
    assert.equal(live.isError, true);
    assert.match(live.text, /Refused: deploying a .*-tier app to live is not part of this delegation/);
    assert.deepEqual(errors, []);
    await agent.close();
    await context.close();
  });

  test('an agent pushes a change to dave’s app; he reads it on its page, confirms it, and it goes live', async () => {
    const reg = await call(rig.server, 'POST', '/api/v1/apps', {
      token: rig.tokens.dave,
      body: lunchPoll({
        runtime: { kind: 'node', entry: 'server.js' },
        template: { name: 'form', version: '1.2.0' },
      }),
    });
    assert.equal(reg.status, 201, reg.text);
    const token = await agentToken(rig.server, 'dave@example.com', { name: 'Claude Code' });
    const repo = await call(rig.server, 'GET', '/api/v1/apps/team-lunch-poll/repository', {
      token: rig.tokens.dave,
    });
    const work = rig.dir;
    assert.equal(
      (await gitCli(work, ['clone', '--quiet', withToken(repo.body.cloneUrl, token), 'lunch'])).code,
      0,
    );
    const clone = join(work, 'lunch');
    const form = JSON.parse(readFileSync(join(clone, 'form.json'), 'utf8'));
    form.fields.push({ id: 'diet', label: 'Anything you cannot eat?', required: false, max: 200 });
    writeFileSync(join(clone, 'form.json'), JSON.stringify(form, null, 2));
    await gitCli(clone, ['commit', '-qam', 'Ask about diets']);
    assert.equal((await gitCli(clone, ['push', '--quiet', 'origin', 'HEAD:refs/heads/diets'])).code, 0);
    const change = async () =>
      (await call(rig.server, 'GET', '/api/v1/apps/team-lunch-poll/changes/1', { token: rig.tokens.dave }))
        .body;
    for (let i = 0; (await change()).checks[0].state === 'pending' && i < 3000; i++)
      await new Promise((r) => setTimeout(r, 200));
    assert.equal((await change()).checks[0].state, 'passed');

    const { context, page, errors } = await rig.signedIn('dave@example.com');
    await page.goto(`${rig.server.url}/apps/team-lunch-poll/changes/1`);
    await page
      .getByText(/Claude Code.*for dave@example\.com, who confirms before it merges: waiting/)
      .waitFor();
    await page.getByText('waiting for dave@example.com to confirm what Claude Code pushed').first().waitFor();
    await rig.accessible(page, 'a change an agent pushed');
    await page.getByRole('link', { name: 'answer it' }).click();
    await page
      .getByRole('heading', {
        level: 3,
        name: /Claude Code asks to merge a change it pushed to an app \(team-lunch-poll\)/,
      })
      .waitFor();
    await page.getByRole('link', { name: /#1: Ask about diets/ }).waitFor();
    await page.getByRole('button', { name: 'Approve' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'Approved: the change merges once its checks' })
      .waitFor();
    for (let i = 0; (await change()).release?.state !== 'passed' && i < 3000; i++)
      await new Promise((r) => setTimeout(r, 200));
    const live = await change();
    assert.equal(live.release?.state, 'passed', JSON.stringify(live, null, 2));
    assert.match(live.merged.by, /dave@example\.com confirmed what Claude Code pushed/);
    const app = await viaGateway(rig.server, 'team-lunch-poll', '/', {
      authorization: `Bearer ${rig.tokens.dave}`,
    });
    assert.match(app.body, /Anything you cannot eat\?/);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
