import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import {
  buildFinished,
  call,
  lunchPoll,
  nodeApp,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

const bin = resolve(import.meta.dirname, '../../cli/bin/microapp.js');

// An app that prints what it must not: its secret, plainly and in base64, on every request.
const chatty = nodeApp(
  'chatty',
  'name: chatty\nowner: alice@example.com\npurpose: Print log lines, some of them careless\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\nsecrets: [API_TOKEN]\n',
  `const fs = require('node:fs');
const token = () => fs.existsSync('/run/secrets/API_TOKEN') ? fs.readFileSync('/run/secrets/API_TOKEN', 'utf8') : 'none';
require('node:http').createServer((req, res) => {
  console.log('request ' + req.url + ' with token ' + token());
  // A hostile line: clear the screen, retitle the terminal, plant a hyperlink.
  if (req.url === '/escape') console.log('\\u001b[2J\\u001b]0;pwned\\u0007\\u001b]8;;https://evil.example/\\u001b\\\\click\\u009b31m');
  console.error('debug: auth header would be Bearer ' + Buffer.from(token()).toString('base64'));
  res.end('ok');
}).listen(process.env.PORT, () => console.log('listening'));
`,
);

// An app that prints its secret in every form a careless or hostile app would, then exits: its start fails.
const leaky = nodeApp(
  'leaky',
  'name: leaky\nowner: alice@example.com\npurpose: Print a secret and fall over\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\nsecrets: [API_TOKEN]\n',
  `const v = require('node:fs').readFileSync('/run/secrets/API_TOKEN', 'utf8');
const b = Buffer.from(v);
console.log('plain ' + v);
console.log('upper ' + v.toUpperCase());
console.log('base64 at an offset ' + Buffer.concat([Buffer.from('u:'), b]).toString('base64'));
console.log('hex ' + b.toString('hex'));
console.log(JSON.stringify({ escaped: [...v].map((c) => '\\\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')).join('') }));
console.error('Error: cannot reach the ledger with ' + v);
process.exit(3);
`,
);

describe('app logs: stored, redacted, followed, kept per tier', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let config: string;
  let serverLog = '';
  const canary = `tok-canary-${randomBytes(8).toString('hex')}`;
  const logs = async (query = '', token = t.alice) =>
    call(server, 'GET', `/api/v1/apps/chatty/logs${query}`, { token });

  /** Alice's app with one secret, API_TOKEN, approved and set to `value`. */
  async function registerWithSecret(name: string, purpose: string, value: string) {
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({
        name,
        owner: people.alice,
        purpose,
        audience: { department: 'finance', maxUsers: 50 },
        secrets: ['API_TOKEN'],
      }),
    });
    if (reg.body.app.state !== 'approved')
      await call(server, 'POST', `/api/v1/apps/${name}/reviews`, {
        token: t.bob,
        body: { decision: 'approve' },
      });
    const set = await call(server, 'PUT', `/api/v1/apps/${name}/secrets/API_TOKEN`, {
      token: t.alice,
      body: { value },
    });
    assert.equal(set.status, 200, set.text);
  }

  before(async () => {
    const sink = { write: (chunk: string) => (serverLog += chunk) };
    ({ server, t, stop } = await startBuildServer(
      {},
      { logger: pino({ level: 'trace' }, pino.multistream([{ stream: sink, level: 'trace' }])) },
    ));
    config = mkdtempSync(join(tmpdir(), 'microapp-logs-cli-'));
    await registerWithSecret('chatty', 'Print log lines, some of them careless', canary);

    const res = await call(server, 'POST', '/api/v1/apps/chatty/builds', {
      token: t.alice,
      body: { source: await sourceArchive(chatty), deploy: true },
    });
    const build = await buildFinished(server, 'chatty', res.body.id, t.alice);
    // On failure, say which step failed and what it printed: a build that fails only on a loaded CI
    // machine can then be diagnosed from the log alone.
    assert.equal(
      build.state,
      'passed',
      [build.error, ...build.steps.map((s) => `${s.step} ${s.status}: ${s.detail}`)].join('\n'),
    );
  });
  after(async () => {
    await stop();
    rmSync(config, { recursive: true, force: true });
  });

  test('what the app prints is stored with its secret blanked out, in every form', async () => {
    assert.equal(
      (await viaGateway(server, 'chatty', '/first', { authorization: `Bearer ${t.dave}` })).status,
      200,
    );
    const r = await logs();
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.running, true);
    const lines = r.body.items as { seq: number; stream: string; line: string; version: string }[];
    assert.deepEqual(
      // After the start (and the health check's own request) come the lines of this request.
      lines.map((l) => [l.stream, l.line]).slice(-2),
      [
        ['stdout', 'request /first with token [redacted:API_TOKEN]'],
        ['stderr', 'debug: auth header would be Bearer [redacted:API_TOKEN]'],
      ],
    );
    assert.equal(lines[0]!.version, '1.0.0');
    assert.equal(lines[0]!.line, 'listening');
    const db = server.rawDb();
    try {
      const stored = JSON.stringify(await db.kysely.selectFrom('app_logs').selectAll().execute());
      assert.doesNotMatch(stored, new RegExp(`${canary}|${Buffer.from(canary).toString('base64')}`));
    } finally {
      await db.destroy();
    }
    // Following: only what came after.
    await viaGateway(server, 'chatty', '/second', { authorization: `Bearer ${t.dave}` });
    const newer = await logs(`?after=${r.body.next}`);
    assert.deepEqual(
      newer.body.items.map((l: { line: string }) => l.line),
      [
        'request /second with token [redacted:API_TOKEN]',
        'debug: auth header would be Bearer [redacted:API_TOKEN]',
      ],
    );
    assert.equal((await logs(`?after=${newer.body.next}`)).body.items.length, 0);
    assert.equal((await logs('?limit=1')).body.items.length, 1);
  });

  test('only the owner and admins read them; bad parameters are refused', async () => {
    assert.equal((await logs('', t.bob)).status, 403, 'a reviewer does not read what an app printed');
    assert.equal((await logs('', t.dave)).status, 403, 'nor does a user of the app');
    assert.equal((await logs('', t.carol)).status, 200, 'an admin does');
    for (const q of ['?env=staging', '?after=-1', '?limit=0', '?limit=99999', '?junk=1'])
      assert.equal((await logs(q)).status, 400, q);
  });

  test('microapp logs prints them; --follow prints new lines as they come', async () => {
    const env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')),
      MICROAPP_SERVER: server.url,
      MICROAPP_TOKEN: t.alice,
      MICROAPP_CONFIG_DIR: config,
    } as Record<string, string>;
    const follow = spawn(process.execPath, [bin, 'logs', 'chatty', '-n', '2', '--follow'], { env });
    let out = '';
    follow.stdout.on('data', (d) => (out += d));
    follow.stderr.on('data', (d) => (out += d));
    try {
      for (let i = 0; i < 100 && !/request \/second/.test(out); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d request \/second with token \[redacted:API_TOKEN\]/);
      assert.doesNotMatch(out, /request \/first/, '-n 2 shows the two newest lines only');
      await viaGateway(server, 'chatty', '/third', { authorization: `Bearer ${t.dave}` });
      for (let i = 0; i < 100 && !/request \/third/.test(out); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /request \/third with token \[redacted:API_TOKEN\]/);
      assert.doesNotMatch(out, new RegExp(canary));
    } finally {
      follow.kill('SIGINT');
    }
  });

  test('an app that prints its secret and exits leaks it nowhere: reply, build, audit, server log, logs', async () => {
    const leak = `leak-${randomBytes(10).toString('hex')}`;
    await registerWithSecret('leaky', 'Print a secret and fall over', leak);
    const built = await call(server, 'POST', '/api/v1/apps/leaky/builds', {
      token: t.alice,
      body: { source: await sourceArchive(leaky), deploy: true },
    });
    const build = await buildFinished(server, 'leaky', built.body.id, t.alice);
    assert.equal(build.state, 'failed');
    // The owner still learns why: the app's own last lines, with the secret blanked out.
    assert.match(build.error ?? '', /did not start/);
    assert.match(build.error ?? '', /Error: cannot reach the ledger with \[redacted:API_TOKEN\]/);
    const deploy = await call(server, 'POST', '/api/v1/apps/leaky/deployments', {
      token: t.alice,
      body: { version: '1.0.0' },
    });
    assert.equal(deploy.status, 503, deploy.text);
    assert.match(deploy.body.detail, /the last lines it printed/);

    const forms = (v: string) => {
      const b = Buffer.from(v);
      return [
        v.toLowerCase(),
        b.toString('hex'),
        b.toString('base64').slice(0, 16),
        Buffer.concat([Buffer.from('u:'), b])
          .toString('base64')
          .slice(4, 20),
      ];
    };
    const db = server.rawDb();
    try {
      const places = {
        'the deploy reply': deploy.text,
        'the build record': JSON.stringify(
          (await call(server, 'GET', `/api/v1/apps/leaky/builds/${built.body.id}`, { token: t.ivan })).body,
        ),
        'the audit trail': JSON.stringify(await db.kysely.selectFrom('audit_events').selectAll().execute()),
        'the stored logs': JSON.stringify(await db.kysely.selectFrom('app_logs').selectAll().execute()),
        'the server log': serverLog,
      };
      for (const [where, text] of Object.entries(places))
        for (const form of forms(leak))
          assert.ok(!text.toLowerCase().includes(form.toLowerCase()), `${where} holds the secret (${form})`);
      const audit = await db.kysely
        .selectFrom('audit_events')
        .select(['action', 'reason'])
        .where('action', '=', 'build.failed')
        .execute();
      assert.ok(audit.length > 0);
      for (const e of audit)
        assert.doesNotMatch(e.reason ?? '', /ledger|printed/, 'no app output in the trail');
    } finally {
      await db.destroy();
    }
  });

  test("microapp logs shows a hostile app's escape sequences as text, and --json keeps them", async () => {
    await viaGateway(server, 'chatty', '/escape', { authorization: `Bearer ${t.dave}` });
    const env = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')),
      MICROAPP_SERVER: server.url,
      MICROAPP_TOKEN: t.alice,
      MICROAPP_CONFIG_DIR: config,
    } as Record<string, string>;
    const run = (args: string[]) =>
      new Promise<string>((done) => {
        const child = spawn(process.execPath, [bin, ...args], { env });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('close', () => done(out));
      });
    const text = await run(['logs', 'chatty', '-n', '3']);
    assert.match(text, /\\x1b\[2J\\x1b\]0;pwned\\x07/, text);
    assert.match(text, /\\x9b31m/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is looked for
    assert.doesNotMatch(text, /[\u001b\u0007\u009b]/, 'no control character reaches the terminal');
    const json = await run(['logs', 'chatty', '-n', '3', '--json']);
    const lines = json
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: string });
    assert.ok(
      lines.some((l) => l.line.includes('\u001b[2J')),
      '--json keeps the line as the app printed it',
    );
  });

  test('lines past their tier’s retention are deleted by the retention job', async () => {
    const { tier } = (await call(server, 'GET', '/api/v1/apps/chatty', { token: t.alice })).body;
    const keep = { low: 7, medium: 30, high: 90 }[tier as 'low' | 'medium' | 'high'];
    server.internals.clock.advance((keep - 1) * 86_400_000);
    await server.internals.jobs.runDue();
    assert.ok((await logs()).body.items.length > 0, `kept for ${keep} days (${tier} tier)`);
    server.internals.clock.advance(2 * 86_400_000);
    await server.internals.jobs.runDue();
    assert.equal((await logs()).body.items.length, 0, `gone after ${keep} days`);
  });
});
