import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDatabase } from '../../server/src/db/database.ts';
import { call, engines, startTestServer, type TestServer, tokenFor } from '../../server/test/harness.ts';
import { bin, cli } from './cli-harness.ts';

const pollYaml = (name: string) => `name: ${name}
owner: alice@example.com
purpose: Let the team vote on where to have lunch on Fridays
dataClasses: [internal]
`;

for (const engine of engines()) {
  describe(`the lifecycle walked from the CLI (${engine})`, () => {
    let server: TestServer;
    let dir: string;
    let env: Record<string, string>;
    const as = async (email: string) => assert.equal((await cli(env, 'login', '--dev-user', email)).code, 0);
    const ok = async (...args: string[]) => {
      const r = await cli(env, ...args);
      assert.equal(r.code, 0, `microapp ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    before(async () => {
      server = await startTestServer(engine);
      dir = mkdtempSync(join(tmpdir(), 'microapp-life-'));
      env = { MICROAPP_CONFIG_DIR: join(dir, 'config'), MICROAPP_SERVER: server.url };
    });
    after(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('warned, stopped, escalated, decommissioned on schedule, then restored; every step in the audit trail', async () => {
      writeFileSync(join(dir, 'poll.yaml'), pollYaml('friday-poll'));
      await as('alice@example.com');
      await ok('register', '-f', join(dir, 'poll.yaml'));
      assert.match(await ok('lifecycle', 'friday-poll'), /stage:\s+active/);

      await as('carol@example.com');
      assert.match(await ok('dev', 'clock', 'advance', '61d'), /Jobs run: .*lifecycle/);
      await as('alice@example.com');
      assert.match(
        await ok('lifecycle', 'friday-poll'),
        /stage:\s+warned \(inactive\)[\s\S]*next step:\s+stop on/,
      );
      assert.match(
        await ok('notifications', '--unread'),
        /friday-poll has not been used for 61 days[\s\S]*→ http:\/\/[^/]+\/apps\/friday-poll#renew/,
      );

      for (const [days, stage] of [
        ['14d', 'stopped'],
        ['16d', 'escalated'],
        ['30d', 'decommissioned'],
      ] as const) {
        await as('carol@example.com');
        await ok('dev', 'clock', 'advance', days);
        await as('alice@example.com');
        assert.match(await ok('lifecycle', 'friday-poll'), new RegExp(`stage:\\s+${stage}`));
      }
      await as('dave@example.com');
      assert.match(await ok('notifications'), /friday-poll will be decommissioned on/);

      await as('alice@example.com');
      assert.match(await ok('restore', 'friday-poll'), /restored with its data/);
      const json = JSON.parse(await ok('lifecycle', 'friday-poll', '--json'));
      assert.equal(json.stage, 'active');

      await as('ivan@example.com');
      const events = (await ok('audit', 'export'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { action: string; target: string });
      const actions = events.filter((e) => e.target === 'friday-poll').map((e) => e.action);
      for (const a of [
        'lifecycle.warned',
        'lifecycle.stopped',
        'lifecycle.escalated',
        'lifecycle.decommissioned',
        'lifecycle.restored',
      ])
        assert.ok(actions.includes(a), `${a} in ${actions.join(', ')}`);
      assert.match(await ok('audit', 'verify'), /audit chain OK/);
    });

    test('a non-admin cannot move the clock; a bad duration is refused with an example', async () => {
      await as('alice@example.com');
      const r = await cli(env, 'dev', 'clock', 'advance', '1d');
      assert.equal(r.code, 1);
      await as('carol@example.com');
      const bad = await cli(env, 'dev', 'clock', 'advance', 'tomorrow');
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /use e\.g\. 61d/);
      const short = await cli(env, 'renew', 'friday-poll');
      assert.equal(short.code, 2);
      assert.match(short.stderr, /--purpose is required/);
    });
  });
}

/** Starts `microapp server --dev` as its own process and waits for the address it prints. */
function startProcess(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  const child = spawn(
    process.execPath,
    [bin, 'server', '--dev', '--port', '0', '--dev-idp-port', '0', '--data-dir', dataDir],
    {
      env: {
        ...parent,
        MICROAPP_JOBS: 'off',
        MICROAPP_JOB_LEASE_SECONDS: '1',
        MICROAPP_LOG_LEVEL: 'warn',
        // One person registers 300 apps here: above the default quota on purpose.
        MICROAPP_QUOTA_REGISTRATIONS_PER_DAY: '1000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    // The address is printed on standard error, with the rest of the server's messages.
    const read = (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => reject(new Error(`server exited (${code}): ${out}`)));
  });
}

describe('kill -9 during the inactivity job', () => {
  let dataDir: string;
  let child: ChildProcess | null = null;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'microapp-kill-'));
  });
  after(() => {
    child?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('after a restart the job finishes once: every app decommissioned exactly once, the chain intact', async () => {
    const apps = 300;
    let running = await startProcess(dataDir);
    child = running.child;
    const carol = await tokenFor(running, 'carol@example.com');
    const alice = await tokenFor(running, 'alice@example.com');
    for (let i = 0; i < apps; i++) {
      const r = await call(running as never, 'POST', '/api/v1/apps', {
        token: alice,
        body: {
          name: `idle-${i}`,
          owner: 'alice@example.com',
          purpose: 'An app nobody will use',
          dataClasses: ['internal'],
        },
      });
      assert.equal(r.status, 201, r.text);
    }
    for (const days of ['61d', '14d', '16d']) {
      const r = await call(running as never, 'POST', '/api/v1/dev/clock', {
        token: carol,
        body: { advance: days },
      });
      assert.equal(r.status, 200, r.text);
    }
    const db = openDatabase({ kind: 'sqlite', file: join(dataDir, 'microapp.sqlite') });
    const decommissioned = async () =>
      Number(
        (
          await db.kysely
            .selectFrom('audit_events')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('action', '=', 'lifecycle.decommissioned')
            .executeTakeFirstOrThrow()
        ).n,
      );
    // The run that decommissions all of them: killed part-way.
    void call(running as never, 'POST', '/api/v1/dev/clock', {
      token: carol,
      body: { advance: '30d' },
    }).catch(() => {});
    let seen = await decommissioned();
    while (seen === 0) {
      await new Promise((r) => setTimeout(r, 10));
      seen = await decommissioned();
    }
    running.child.kill('SIGKILL');
    await new Promise((r) => running.child.once('exit', r));
    const atKill = await decommissioned();
    assert.ok(seen > 0 && atKill < apps, `the kill landed mid-run (${atKill} of ${apps} done)`);

    running = await startProcess(dataDir);
    child = running.child;
    // The dead server's lease lapses after a second (MICROAPP_JOB_LEASE_SECONDS=1); then the job is run again.
    await new Promise((r) => setTimeout(r, 1200));
    const carol2 = await tokenFor(running, 'carol@example.com');
    const r = await call(running as never, 'POST', '/api/v1/dev/clock', {
      token: carol2,
      body: { advance: '1m' },
    });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.body.ran.includes('lifecycle'), JSON.stringify(r.body.ran));

    assert.equal(await decommissioned(), apps, 'every app decommissioned');
    const twice = await db.kysely
      .selectFrom('audit_events')
      .select(['target', (eb) => eb.fn.countAll().as('n')])
      .where('action', '=', 'lifecycle.decommissioned')
      .groupBy('target')
      .having((eb) => eb.fn.countAll(), '>', 1)
      .execute();
    assert.deepEqual(twice, [], 'no app decommissioned twice');
    const archives = await db.kysely
      .selectFrom('app_archives')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(Number(archives.n), apps, 'one archive per app');
    const verify = await call(running as never, 'GET', '/api/v1/audit/verify', { token: carol2 });
    assert.equal(verify.body.ok, true, verify.text);
    await db.destroy();
  });
});
