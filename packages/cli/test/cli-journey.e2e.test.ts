import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { engines, startTestServer, type TestServer } from '../../server/test/harness.ts';
import { bin, cli, cliWithInput } from './cli-harness.ts';

const bankYaml = `name: bank-reconciliation
owner: alice@example.com
purpose: Match bank CSVs to ledger entries
dataClasses: [internal, financial, pii]
audience: { department: finance, maxUsers: 40 }
integrations:
  egress: [api.bank.example.com]
  connectors: [ledger-api]
secrets: [LEDGER_READ_TOKEN]
runtime: { kind: node, entry: server.js, memoryMb: 256, cpu: 0.5 }
lifetime: { expires: 2027-03-31 }
`;
const lunchYaml = `name: team-lunch-poll
owner: dave@example.com
purpose: Let the team vote on where to have lunch on Fridays
dataClasses: [internal]
`;

for (const engine of engines()) {
  describe(`the CLI journey from the README (${engine})`, () => {
    let server: TestServer;
    let dir: string;
    let env: Record<string, string>;
    const as = async (email: string) => {
      const r = await cli(env, 'login', '--dev-user', email);
      assert.equal(r.code, 0, r.stderr);
    };
    before(async () => {
      server = await startTestServer(engine);
      dir = mkdtempSync(join(tmpdir(), 'microapp-cli-'));
      env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
      writeFileSync(join(dir, 'bank.yaml'), bankYaml);
      writeFileSync(join(dir, 'lunch.yaml'), lunchYaml);
    });
    after(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('register, review, approve, verify, tamper, detect', async () => {
      await as('alice@example.com');
      assert.equal(
        statSync(join(dir, 'config', 'credentials.json')).mode & 0o777,
        0o600,
        'credentials are private',
      );
      const who = await cli(env, 'whoami', '--json');
      assert.equal(JSON.parse(who.stdout).user.email, 'alice@example.com');

      const reg = await cli(env, 'register', '--file', join(dir, 'bank.yaml'));
      assert.equal(reg.code, 0, reg.stderr);
      assert.match(reg.stdout, /risk:\s+high/);
      assert.match(reg.stdout, /personal data \(PII\)/);
      assert.match(reg.stdout, /waiting for: security review and compliance review/);

      const own = await cli(env, 'approvals', 'approve', 'bank-reconciliation');
      assert.equal(own.code, 1);
      assert.match(own.stderr, /^error: /);

      await as('bob@example.com');
      const bob = await cli(env, 'approvals', 'approve', 'bank-reconciliation', '--json');
      assert.equal(bob.code, 0, bob.stderr);
      assert.equal(JSON.parse(bob.stdout).state, 'pending_review');

      await as('erin@example.com');
      const erin = await cli(
        env,
        'approvals',
        'approve',
        'bank-reconciliation',
        '--comment',
        'masking verified',
      );
      assert.equal(erin.code, 0, erin.stderr);
      assert.match(erin.stdout, /\(approved\)/);

      await as('dave@example.com');
      const lunch = await cli(env, 'register', '-f', join(dir, 'lunch.yaml'), '--json');
      const lunchApp = JSON.parse(lunch.stdout).app;
      assert.equal(lunchApp.tier, 'low');
      assert.equal(lunchApp.state, 'approved');

      const list = await cli(env, 'apps', 'list', '--json');
      assert.deepEqual(
        JSON.parse(list.stdout).items.map((a: { name: string }) => a.name),
        ['bank-reconciliation', 'team-lunch-poll'],
      );

      await as('ivan@example.com');
      const verify = await cli(env, 'audit', 'verify');
      assert.equal(verify.code, 0, verify.stderr);
      assert.match(verify.stdout, /audit chain OK/);

      const exported = join(dir, 'audit.jsonl');
      const exp = await cli(env, 'audit', 'export', '--since', '2020-01-01', '--out', exported);
      assert.equal(exp.code, 0, exp.stderr);

      const raw = server.rawDb();
      let victim: { id: string };
      try {
        victim = await raw.kysely
          .selectFrom('audit_events')
          .select('id')
          .where('action', '=', 'app.registered')
          .executeTakeFirstOrThrow();
        if (engine === 'sqlite') {
          await sql`drop trigger audit_events_no_update`.execute(raw.kysely);
          await sql`update audit_events set summary = '{"state":"approved"}' where id = ${victim.id}`.execute(
            raw.kysely,
          );
        } else {
          await sql`alter table audit_events disable trigger audit_events_no_change`.execute(raw.kysely);
          await sql`update audit_events set summary = '{"state":"approved"}' where id = ${victim.id}`.execute(
            raw.kysely,
          );
        }
      } finally {
        await raw.destroy();
      }
      const broken = await cli(env, 'audit', 'verify');
      assert.equal(broken.code, 1);
      assert.match(broken.stdout, new RegExp(`BROKEN at event ${victim.id}`));
    });

    test('secrets are read from standard input and never printed back', async () => {
      await as('alice@example.com');
      const canary = `canary-${Date.now()}-${Math.random().toString(36).slice(2)}`;
      const set = await cliWithInput(
        env,
        canary,
        'secrets',
        'set',
        'LEDGER_READ_TOKEN',
        '--app',
        'bank-reconciliation',
      );
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /will not be shown again/);
      const list = await cli(env, 'secrets', 'list', '--app', 'bank-reconciliation', '--json');
      assert.equal(JSON.parse(list.stdout)[0].set, true);
      for (const r of [set, list]) assert.ok(!(r.stdout + r.stderr).includes(canary));
      const empty = await cliWithInput(
        env,
        '',
        'secrets',
        'set',
        'LEDGER_READ_TOKEN',
        '--app',
        'bank-reconciliation',
      );
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /no value on standard input/);
    });

    test('every command has --help with an example; usage errors exit 2', async () => {
      for (const args of [
        ['register'],
        ['apps', 'list'],
        ['approvals', 'reject'],
        ['audit', 'verify'],
        ['tokens', 'create'],
        ['login'],
        ['server'],
      ]) {
        const r = await cli(env, ...args, '--help');
        assert.equal(r.code, 0, args.join(' '));
        assert.match(r.stdout, /Examples:\n\s+\$ microapp /, args.join(' '));
      }
      const missing = await cli(env, 'approvals', 'reject', 'x');
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /--reason/);
    });

    test('tokens created by the CLI are shown once and work for scripts', async () => {
      await as('carol@example.com');
      const created = await cli(env, 'tokens', 'create', '--name', 'ci', '--scope', 'apps:read', '--json');
      assert.equal(created.code, 0, created.stderr);
      const { token, id } = JSON.parse(created.stdout);
      const asCi = await cli({ ...env, MICROAPP_TOKEN: token }, 'apps', 'list', '--json');
      assert.equal(asCi.code, 0, asCi.stderr);
      const listed = await cli(env, 'tokens', 'list');
      assert.ok(!listed.stdout.includes(token));
      assert.equal((await cli(env, 'tokens', 'revoke', id)).code, 0);
      const after = await cli({ ...env, MICROAPP_TOKEN: token }, 'apps', 'list');
      assert.equal(after.code, 1);
      assert.match(after.stderr, /invalid, expired or revoked/);
    });

    test('a server that is not there is explained', async () => {
      const r = await cli(
        { ...env, MICROAPP_SERVER: 'http://127.0.0.1:9', MICROAPP_TOKEN: 'mat_x' },
        'apps',
        'list',
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr, /cannot reach the microapp server/);
    });
  });
}

describe('microapp server --dev as a new user starts it', () => {
  let child: ChildProcess;
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-start-'));
  });
  after(() => {
    child?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers /healthz within 30 s', async () => {
    const started = Date.now();
    child = spawn(
      process.execPath,
      [bin, 'server', '--dev', '--port', '0', '--dev-idp-port', '0', '--data-dir', dir],
      {
        env: { ...process.env, MICROAPP_LOG_LEVEL: 'warn', DATABASE_URL: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const url = await new Promise<string>((done, fail) => {
      let err = '';
      child.stderr!.on('data', (chunk) => {
        err += chunk;
        const m = /listening on (http:\/\/\S+)/.exec(err);
        if (m) done(m[1]!);
      });
      child.on('exit', (code) => fail(new Error(`server exited ${code}: ${err}`)));
      setTimeout(() => fail(new Error(`no start within 30 s: ${err}`)), 30_000).unref();
    });
    const res = await fetch(`${url}/healthz`);
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 30_000);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    const openapi = (await (await fetch(`${url}/api/openapi.json`)).json()) as {
      openapi: string;
      paths: object;
    };
    assert.equal(openapi.openapi, '3.1.0');
    assert.ok('/api/v1/apps' in openapi.paths);
  });
});
