// A person and their AI agent in the browser: dave consents on the platform's own page when his agent
// connects through MCP, then the agent's change that adds personal data and an outside host waits until
// dave approves it on the Agents page. Both pages are scanned with axe-core.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parse as parseYaml } from 'yaml';
import { callTool, MemoryOAuthProvider } from '../../server/test/agent-client.ts';
import { call } from '../../server/test/harness.ts';
import { type ConsoleRig, startConsoleRig } from './console-harness.ts';

describe('an agent held at a checkpoint until its person approves in the console', () => {
  let rig: ConsoleRig;
  before(async () => {
    rig = await startConsoleRig();
  });
  after(() => rig?.stop());

  test('dave consents in the browser, then approves what his agent asked', async () => {
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
    const wider = {
      ...manifest,
      dataClasses: ['internal', 'pii'],
      integrations: { egress: ['crm.example.org'] },
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
    await page.getByText('crm.example.org', { exact: true }).waitFor();
    await page.goto(`${rig.server.url}/agents`);
    await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    await page.getByRole('cell', { name: 'claude-sonnet-4-5' }).waitFor();
    await rig.accessible(page, 'the Agents page');
    await rig.shot(page, 'agent-requests');
    await page.getByLabel('A note for the record (optional)').fill('fine for the visitor pilot');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('status').filter({ hasText: 'Approved' }).waitFor();

    const through = await callTool(agent, 'register_app', { manifest: wider });
    assert.equal(through.isError, false, through.text);
    const app = await call(rig.server, 'GET', '/api/v1/apps/visitor-log', { token: rig.tokens.dave });
    assert.deepEqual(app.body.manifest.dataClasses, ['internal', 'pii']);
    assert.deepEqual(errors, []);
    await agent.close();
    await context.close();
  });
});
