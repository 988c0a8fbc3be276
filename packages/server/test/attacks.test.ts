import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { sql } from 'kysely';
import { devSignIn } from '../../cli/src/login-flow.ts';
import { unzipBounded } from '../src/modules/advisories/advisory-service.ts';
import { hashEvent } from '../src/modules/audit/audit-chain.ts';
import { safeReturnTo } from '../src/modules/identity/login-service.ts';
import { expireForeignCookies } from '../src/modules/runtime/browser-isolation.ts';
import {
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone as signIn,
  type signInEveryone,
  startTestServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

/** Any request to an app host on this server's port, as a browser on `{app}.apps.localhost` sends it. */
function toApp(
  server: TestServer,
  app: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
) {
  const { port } = server.app.server.address() as AddressInfo;
  return new Promise<{
    status: number;
    body: string;
    headers: Record<string, string | string[] | undefined>;
  }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { host: `${app}.apps.localhost:${port}`, ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Signs a browser in to an app's host through the platform; returns the app session cookie header. */
async function appSession(server: TestServer, app: string, email: string): Promise<string> {
  const first = await toApp(server, app, 'GET', '/', { accept: 'text/html' });
  assert.equal(first.status, 302);
  const state = (first.headers['set-cookie'] as string[]).find((c) => c.includes('microapp_app_state='))!;
  const { url } = await devSignIn(first.headers.location as string, email, (u) =>
    u.hostname.endsWith('.apps.localhost'),
  );
  const done = await toApp(server, app, 'GET', url.pathname + url.search, { cookie: state.split(';')[0]! });
  assert.equal(done.status, 302, done.body);
  return (done.headers['set-cookie'] as string[])
    .find((c) => c.includes('microapp_app_session='))!
    .split(';')[0]!;
}

/**
 * The security suite for boundaries that need no sandbox: each test is an attack that worked once, aimed
 * at this server only, and asserts that it fails now (docs/security.md lists them by boundary).
 */
describe('sign-in return URLs', () => {
  test('only paths on the same origin survive, and any control character refuses the value', () => {
    for (const evil of [
      '/\t/evil.example',
      '/%09/evil.example',
      '/\n/evil.example',
      '/%0a/evil.example',
      '/\r\n/evil.example',
      '//evil.example',
      '/\\evil.example',
      '/%5cevil.example',
      'https://evil.example/',
      '/\u0000/evil.example',
      '/\u0085/evil.example',
      'javascript:alert(1)',
      '/%zz',
    ])
      assert.equal(safeReturnTo(evil), '/', JSON.stringify(evil));
    assert.equal(safeReturnTo('/apps/new?x=1#top'), '/apps/new?x=1#top');
    assert.equal(safeReturnTo('/apps/../audit'), '/audit');
  });
});

for (const engine of engines()) {
  describe(`attacks on sign-in and tokens (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signIn(server);
    });
    after(() => server.stop());

    test('a tab in return_to does not land the browser on another host after sign-in', async () => {
      const origin = new URL(server.url);
      const start = `${server.url}/auth/login?return_to=${encodeURIComponent('/\t/evil.example/phish')}`;
      const { url } = await devSignIn(
        start,
        people.alice,
        (u) =>
          (u.host === origin.host && !u.pathname.startsWith('/auth/')) || u.hostname.endsWith('evil.example'),
      );
      assert.equal(url.host, origin.host, `landed on ${url.href}`);
      assert.equal(url.pathname, '/');
    });

    test('a token without apps:use cannot use apps through the gateway', async () => {
      await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll() });
      const narrow = await call(server, 'POST', '/api/v1/tokens', {
        token: t.dave,
        body: { name: 'audit-export', scopes: ['audit:read'] },
      });
      assert.equal(narrow.status, 201, narrow.text);
      const refused = await viaGateway(server, 'team-lunch-poll', '/', {
        authorization: `Bearer ${narrow.body.token}`,
        accept: 'application/json',
      });
      assert.equal(refused.status, 403);
      assert.match(refused.body, /apps:use/);
      const post = await viaGateway(server, 'team-lunch-poll', '/submit', {
        authorization: `Bearer ${narrow.body.token}`,
      });
      assert.equal(post.status, 403);
      // The same person with a token that has the scope gets past the gateway's sign-in (the app is not
      // running, so it answers 503 from behind it).
      const wide = await call(server, 'POST', '/api/v1/tokens', {
        token: t.dave,
        body: { name: 'use-apps', scopes: ['apps:use'] },
      });
      const admitted = await viaGateway(server, 'team-lunch-poll', '/', {
        authorization: `Bearer ${wide.body.token}`,
        accept: 'application/json',
      });
      assert.equal(admitted.status, 503, admitted.body);
      // The CLI's sign-in token carries every scope, apps:use included.
      const cli = await viaGateway(server, 'team-lunch-poll', '/', {
        authorization: `Bearer ${t.dave}`,
        accept: 'application/json',
      });
      assert.equal(cli.status, 503, cli.body);
    });

    test("another app's page cannot send this app a change with the user's session (cross-app CSRF)", async () => {
      await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll({ name: 'expenses' }) });
      await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'embedded-poll', web: { acceptFrom: ['https://intranet.example.com'] } }),
      });
      const cookie = await appSession(server, 'expenses', people.dave);
      const { port } = server.app.server.address() as AddressInfo;
      const form = { cookie, 'content-type': 'application/x-www-form-urlencoded' };
      for (const [how, headers] of [
        ['a sibling app by Origin', { origin: `http://evil.apps.localhost:${port}` }],
        ['another site by Origin', { origin: 'https://evil.example' }],
        ['an opaque origin (a sandboxed frame)', { origin: 'null' }],
        ['a sibling app by Sec-Fetch-Site', { 'sec-fetch-site': 'same-site' }],
        ['another site by Sec-Fetch-Site', { 'sec-fetch-site': 'cross-site' }],
      ] as const) {
        const res = await toApp(
          server,
          'expenses',
          'POST',
          '/submit',
          { ...form, ...headers, accept: 'application/json' },
          'amount=1000',
        );
        assert.equal(res.status, 403, `${how}: ${res.body}`);
        assert.match(res.body, /web\.acceptFrom/);
      }
      // The app's own pages get through the gateway's checks (the app is not running, so 503 behind them).
      const own = await toApp(server, 'expenses', 'POST', '/submit', {
        ...form,
        origin: `http://expenses.apps.localhost:${port}`,
        'sec-fetch-site': 'same-origin',
        accept: 'application/json',
      });
      assert.equal(own.status, 503, own.body);
      // What a browser sends for the app's own form, under the gateway's no-referrer policy.
      const ownForm = await toApp(server, 'expenses', 'POST', '/submit', {
        ...form,
        origin: 'null',
        'sec-fetch-site': 'same-origin',
        accept: 'application/json',
      });
      assert.equal(ownForm.status, 503, ownForm.body);
      // An origin the manifest names is accepted; the same origin is not for an app that does not name it.
      const session2 = await appSession(server, 'embedded-poll', people.dave);
      const named = await toApp(server, 'embedded-poll', 'POST', '/vote', {
        cookie: session2,
        origin: 'https://intranet.example.com',
        'sec-fetch-site': 'cross-site',
        accept: 'application/json',
      });
      assert.equal(named.status, 503, named.body);
      const refused = await toApp(server, 'expenses', 'POST', '/vote', {
        cookie,
        origin: 'https://intranet.example.com',
        accept: 'application/json',
      });
      assert.equal(refused.status, 403);
      // Not an origin: the manifest refuses paths and wildcards.
      const bad = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'bad-origins', web: { acceptFrom: ['https://*.example.com/path'] } }),
      });
      assert.equal(bad.status, 400, bad.text);
    });

    test('a request too large to read (a cookie bomb) gets a page that clears the cookies', async () => {
      const bomb = Array.from({ length: 40 }, (_, i) => `bomb${i}=${'x'.repeat(1000)}`).join('; ');
      const res = await toApp(server, 'expenses', 'GET', '/', { cookie: bomb, accept: 'text/html' });
      assert.equal(res.status, 431);
      assert.match(res.body, /document\.cookie = name \+ '=; Max-Age=0; Path=\/; Domain='/);
      // Below that, cookies the gateway did not set are expired on the host and every parent domain.
      const expire = expireForeignCookies(
        `microapp_app_session=abc; ${Array.from({ length: 6 }, (_, i) => `junk${i}=${'y'.repeat(900)}`).join('; ')}`,
        ['microapp_app_session', 'microapp_app_state'],
        'expenses.apps.localhost:8080',
      );
      assert.ok(expire.includes('junk0=; Path=/; Domain=apps.localhost; Max-Age=0'), expire.join('\n'));
      assert.ok(expire.includes('junk5=; Path=/; Max-Age=0'));
      assert.ok(!expire.some((c) => c.startsWith('microapp_app_session')), 'its own cookie stays');
      assert.deepEqual(expireForeignCookies('theme=dark; lang=en', [], 'a.apps.localhost'), []);
    });
  });
}

describe('app cookies on a platform served over https', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('sqlite', { env: { MICROAPP_PUBLIC_URL: 'https://localhost:9443' } });
  });
  after(() => server.stop());

  test('sign-in state and sessions are __Host- cookies, which a sibling app cannot set or toss', async () => {
    const res = await toApp(server, 'expenses', 'GET', '/', { accept: 'text/html' });
    assert.equal(res.status, 302);
    const state = (res.headers['set-cookie'] as string[]).find((c) =>
      c.startsWith('__Host-microapp_app_state='),
    );
    assert.ok(state, String(res.headers['set-cookie']));
    assert.match(state, /; Secure/i);
    assert.match(state, /; Path=\/(;|$)/);
    assert.doesNotMatch(state, /Domain=/i);
    // A plain-named state cookie, as a sibling could plant for the parent domain, does not finish a sign-in.
    const planted = await toApp(server, 'expenses', 'GET', '/_microapp/callback?code=x', {
      cookie: `microapp_app_state=${'a'.repeat(43)}`,
    });
    assert.equal(planted.status, 400);
  });
});

/** Root on the database host: turn off the append-only guard, run `change`, turn it back on. */
async function asDatabaseRoot(
  server: TestServer,
  change: (db: ReturnType<TestServer['rawDb']>) => Promise<void>,
) {
  const raw = server.rawDb();
  try {
    if (server.engine === 'sqlite') {
      await sql`drop trigger audit_events_no_update`.execute(raw.kysely);
      await sql`drop trigger audit_events_no_delete`.execute(raw.kysely);
    } else await sql`alter table audit_events disable trigger user`.execute(raw.kysely);
    await change(raw);
  } finally {
    if (server.engine === 'sqlite') {
      await sql`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END`.execute(raw.kysely);
      await sql`CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END`.execute(raw.kysely);
    } else await sql`alter table audit_events enable trigger user`.execute(raw.kysely);
    await raw.destroy();
  }
}

for (const engine of engines()) {
  describe(`attacks on the audit trail by root on the database host (${engine})`, () => {
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    before(async () => {
      server = await startTestServer(engine);
      t = await signIn(server);
      for (const name of ['ledger-a', 'ledger-b', 'ledger-c'])
        await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll({ name }) });
    });
    after(() => server.stop());

    const verify = (checkpoint?: unknown) =>
      checkpoint
        ? call(server, 'POST', '/api/v1/audit/verify', { token: t.ivan, body: { checkpoint } })
        : call(server, 'GET', '/api/v1/audit/verify', { token: t.ivan });

    test('a rewritten chain with every hash recomputed fails against a signed checkpoint', async () => {
      const made = await call(server, 'POST', '/api/v1/audit/checkpoints', { token: t.ivan });
      assert.equal(made.status, 200, made.text);
      const kept = made.body.checkpoint;
      assert.equal(kept.type, 'microapp.audit.checkpoint/v1');
      const key = await fetch(`${server.url}/api/v1/audit/checkpoints/key.pub`);
      assert.match(await key.text(), /BEGIN PUBLIC KEY/);
      assert.equal((await verify()).body.ok, true);

      // Rewrite the first registration's actor, then recompute every later hash so the chain links again.
      await asDatabaseRoot(server, async (raw) => {
        const rows = await raw.kysely.selectFrom('audit_events').selectAll().orderBy('seq').execute();
        let prev = '0'.repeat(64);
        for (const row of rows) {
          const event = {
            seq: Number(row.seq),
            id: row.id,
            occurredAt: row.occurred_at,
            actor: row.action === 'app.registered' ? 'mallory@example.com' : row.actor,
            action: row.action,
            targetType: row.target_type,
            target: row.target,
            reason: row.reason,
            requestId: row.request_id,
            sourceIp: row.source_ip,
            summary: JSON.parse(row.summary),
            prevHash: prev,
          };
          prev = hashEvent(event);
          await raw.kysely
            .updateTable('audit_events')
            .set({ actor: event.actor, prev_hash: event.prevHash, hash: prev })
            .where('seq', '=', row.seq)
            .execute();
        }
      });
      const own = await verify();
      assert.equal(own.body.ok, false, 'the platform holds its own checkpoint');
      assert.match(own.body.broken.reason, /rewritten/);
      // Root also deletes the platform's checkpoints: the one the auditor kept still catches it.
      await asDatabaseRoot(server, async (raw) => {
        await raw.kysely.deleteFrom('audit_checkpoints').execute();
      });
      assert.equal((await verify()).body.ok, true, 'without any checkpoint, a recomputed chain links');
      const theirs = await verify(kept);
      assert.equal(theirs.body.ok, false);
      assert.match(theirs.body.broken.reason, /rewritten/);
    });

    test('deleting the newest events fails against a checkpoint; a forged checkpoint is refused', async () => {
      // A fresh server state for this attack: checkpoint what the chain holds now (as rewritten above, which
      // is what root left), add events, checkpoint again, then delete the newest.
      await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll({ name: 'ledger-d' }) });
      const kept = (await call(server, 'POST', '/api/v1/audit/checkpoints', { token: t.ivan })).body
        .checkpoint;
      await asDatabaseRoot(server, async (raw) => {
        const newest = await raw.kysely
          .selectFrom('audit_events')
          .select('seq')
          .orderBy('seq', 'desc')
          .limit(2)
          .execute();
        await raw.kysely.deleteFrom('audit_events').where('seq', '>=', newest.at(-1)!.seq).execute();
      });
      const truncated = await verify(kept);
      assert.equal(truncated.body.ok, false);
      assert.match(truncated.body.broken.reason, /the newest events were deleted/);
      const forged = { ...kept, seq: kept.seq - 2 };
      const refused = await verify(forged);
      assert.equal(refused.status, 400);
      assert.match(refused.body.detail, /signature does not verify/);
      // Nor can root plant a checkpoint row of its own making: the platform passes over it.
      await asDatabaseRoot(server, async (raw) => {
        await raw.kysely
          .insertInto('audit_checkpoints')
          .values({
            seq: kept.seq - 2,
            head: 'f'.repeat(64),
            at: kept.at,
            keyid: kept.keyid,
            signature: kept.signature,
          })
          .execute();
      });
      const latest = await call(server, 'GET', '/api/v1/audit/checkpoints/latest', { token: t.ivan });
      assert.equal(latest.body.checkpoint.seq, kept.seq);
      assert.equal((await call(server, 'POST', '/api/v1/audit/checkpoints', { token: t.dave })).status, 403);
    });
  });
}

describe('attacks on the policy engine: one caller cannot stall or crash everyone', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  before(async () => {
    server = await startTestServer('sqlite');
    t = await signIn(server);
    // A rule that walks whatever input it is given: what any real policy over a manifest or an SBOM does.
    const pushed = await call(server, 'POST', '/api/v1/policies', {
      token: t.carol,
      body: {
        modules: {
          'walk.rego':
            'package microapp.walk\nimport rego.v1\nlarge contains x if { some x in input.items; y := (x * 31) % 1009; z := sprintf("%d-%d", [x, y]); endswith(z, "-3") }\n',
        },
      },
    });
    assert.equal(pushed.status, 201, pushed.text);
  });
  after(() => server.stop());

  test('a large evaluation runs off the event loop: the server answers others while it works', async () => {
    const items = Array.from({ length: 150_000 }, (_, i) => i);
    const order: string[] = [];
    const slow = call(server, 'POST', '/api/v1/policies/evaluate', {
      token: t.dave,
      body: { entrypoint: 'data.microapp.walk.large', input: { items } },
    }).then((r) => {
      order.push('evaluate');
      return r;
    });
    // Sent once the evaluation has arrived; with evaluation on the main thread this would wait behind it.
    await new Promise((r) => setTimeout(r, 100));
    const health = await fetch(`${server.url}/healthz`).then((r) => {
      order.push('healthz');
      return r.status;
    });
    const res = await slow;
    assert.equal(health, 200);
    // It finishes, or (on a loaded machine) stops at its time budget: either way it ran beside the server.
    assert.ok(
      res.status === 200 || (res.status === 422 && /time budget/.test(res.text)),
      res.text.slice(0, 300),
    );
    assert.deepEqual(order, ['healthz', 'evaluate'], 'the health check did not wait for the evaluation');
  });

  test('a pushed test that builds a huge string is refused; the server keeps running', async () => {
    const bomb = `package microapp.bomb
import rego.v1
grow(s) := concat("", [s, s, s, s, s, s, s, s, s, s])
test_bomb if {
  a := grow(grow(grow(grow(grow("0123456789")))))
  b := grow(grow(grow(a)))
  count(b) > 0
}
`;
    const res = await call(server, 'POST', '/api/v1/policies', {
      token: t.carol,
      body: {
        modules: { 'walk.rego': 'package microapp.walk\nimport rego.v1\nlarge := 1\n', 'bomb.rego': bomb },
      },
    });
    assert.equal(res.status, 422, res.text);
    assert.match(res.text, /budget|memory/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const again = await call(server, 'GET', '/api/v1/policies', { token: t.carol });
    assert.equal(again.status, 200);
  });

  test('evaluations are rate-limited per person, not for everyone', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++)
      statuses.push(
        (
          await call(server, 'POST', '/api/v1/policies/evaluate', {
            token: t.frank,
            body: { entrypoint: 'data.microapp.walk.large', input: { items: [3] } },
          })
        ).status,
      );
    assert.ok(statuses.includes(429), `no 429 in ${statuses.join(',')}`);
    const limited = await call(server, 'POST', '/api/v1/policies/evaluate', {
      token: t.frank,
      body: { entrypoint: 'data.microapp.walk.large', input: { items: [3] } },
    });
    assert.match(limited.body.detail, /wait \d+ s/);
    const other = await call(server, 'POST', '/api/v1/policies/evaluate', {
      token: t.alice,
      body: { entrypoint: 'data.microapp.walk.large', input: { items: [3] } },
    });
    assert.equal(other.status, 200, 'someone else is not held back');
  });
});

describe('uploads that expand without bound', () => {
  test('an advisory zip bomb is stopped by what it inflates to, not by what it declares', () => {
    const bomb = zipSync({ 'a.json': new Uint8Array(8 * 1024 * 1024) }, { level: 9 });
    assert.ok(bomb.length < 64 * 1024);
    assert.throws(
      () => unzipBounded(bomb, { bytes: 1024 * 1024, entries: 100, ratio: 50 }),
      /expands past 1 MB/,
    );
    const many = zipSync(
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${i}.json`, new Uint8Array(1)])),
    );
    assert.throws(
      () => unzipBounded(many, { bytes: 1024 * 1024, entries: 10, ratio: 50 }),
      /more than 10 files/,
    );
    const fine = unzipBounded(zipSync({ 'x.json': new TextEncoder().encode('{"id":"GHSA-1"}') }));
    assert.equal(new TextDecoder().decode(fine['x.json']), '{"id":"GHSA-1"}');
    assert.throws(() => unzipBounded(new TextEncoder().encode('not a zip')), /not a readable zip/);
  });

  test('the bounds do not refuse a real snapshot: 20,000 records and 40,000 tiny entries unpack whole', () => {
    // One push of the whole archive overflowed the stack past a few thousand entries (found by bench/pipeline).
    const records = Object.fromEntries(
      Array.from({ length: 20_000 }, (_, i) => [
        `GHSA-${i}.json`,
        new TextEncoder().encode(JSON.stringify({ id: `GHSA-${i}`, summary: 'x'.repeat(200) })),
      ]),
    );
    const out = unzipBounded(zipSync(records));
    assert.equal(Object.keys(out).length, 20_000);
    assert.equal(JSON.parse(new TextDecoder().decode(out['GHSA-19999.json'])).id, 'GHSA-19999');
    const tiny = zipSync(
      Object.fromEntries(Array.from({ length: 40_000 }, (_, i) => [String(i), new Uint8Array(0)])),
      { level: 0 },
    );
    assert.equal(Object.keys(unzipBounded(tiny)).length, 40_000);
  });
});

describe('one creator cannot take the platform’s resources', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  before(async () => {
    server = await startTestServer('sqlite', {
      env: { MICROAPP_QUOTA_REGISTRATIONS_PER_DAY: '3', MICROAPP_QUOTA_BUILDS_PER_HOUR: '2' },
    });
    t = await signIn(server);
  });
  after(() => server.stop());

  test('an app asking for more than the platform gives is refused; a large request is a risk factor', async () => {
    const greedy = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({ name: 'greedy', runtime: { kind: 'node', memoryMb: 8192, cpu: 8 } }),
    });
    assert.equal(greedy.status, 400, greedy.text);
    assert.match(greedy.body.detail, /8192 MB is more than this platform gives an app \(2048 MB\)/);
    assert.deepEqual(
      greedy.body.errors.map((e: { path: string }) => e.path),
      ['/runtime/memoryMb', '/runtime/cpu'],
    );
    assert.equal((await call(server, 'GET', '/api/v1/apps/greedy', { token: t.dave })).status, 404);
    const big = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({ name: 'big-sheet', runtime: { kind: 'node', memoryMb: 1024, cpu: 2 } }),
    });
    assert.equal(big.status, 201, big.text);
    assert.equal(big.body.app.tier, 'medium', 'not approved at the low tier on its own say-so');
    assert.ok(big.body.app.assessment.factors.some((f: { id: string }) => f.id === 'resources:large'));
  });

  test('registrations and builds have a per-person quota; admins and re-registrations are not held', async () => {
    // big-sheet above was the first new app today; two more fit.
    for (const name of ['quota-1', 'quota-2'])
      assert.equal(
        (await call(server, 'POST', '/api/v1/apps', { token: t.dave, body: lunchPoll({ name }) })).status,
        201,
      );
    const over = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({ name: 'quota-3' }),
    });
    assert.equal(over.status, 429, over.text);
    assert.match(over.body.detail, /3 new apps in the last 24 hours/);
    const again = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({ name: 'quota-1', purpose: 'Let the team vote on lunch, now on Thursdays too' }),
    });
    assert.ok(again.status === 200 || again.status === 201, again.text);
    const admin = await call(server, 'POST', '/api/v1/apps', {
      token: t.carol,
      body: lunchPoll({ name: 'quota-admin', owner: people.carol }),
    });
    assert.equal(admin.status, 201, admin.text);

    // Two builds an hour for this server; a third is refused before anything is queued.
    const source = gzipSync(Buffer.from('not even a tar')).toString('base64');
    for (const name of ['quota-1', 'quota-2']) {
      const res = await call(server, 'POST', `/api/v1/apps/${name}/builds`, {
        token: t.dave,
        body: { source },
      });
      assert.equal(res.status, 202, res.text);
    }
    const third = await call(server, 'POST', '/api/v1/apps/big-sheet/builds', {
      token: t.dave,
      body: { source },
    });
    assert.equal(third.status, 429, third.text);
    assert.match(third.body.detail, /2 builds in the last hour/);
  });
});

describe('a manifest cannot set what the platform sets, nor carry a secret', () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  before(async () => {
    server = await startTestServer('sqlite');
    t = await signIn(server);
  });
  after(() => server.stop());

  test('PORT, NODE_OPTIONS, LD_PRELOAD and MICROAPP_* are refused; so is a name that says it holds a secret', async () => {
    for (const [name, why] of [
      ['NODE_OPTIONS', /NODE_OPTIONS is set by the platform/],
      ['LD_PRELOAD', /LD_PRELOAD is set by the platform/],
      ['PORT', /PORT is set by the platform/],
      ['MICROAPP_IDENTITY_PUBLIC_KEY', /set by the platform/],
      [
        'LEDGER_API_TOKEN',
        /looks like a secret: store it with `microapp secrets set LEDGER_API_TOKEN --app envy`/,
      ],
    ] as const) {
      const res = await call(server, 'POST', '/api/v1/apps', {
        token: t.dave,
        body: lunchPoll({ name: 'envy', runtime: { kind: 'node', env: { [name]: 'x' } } }),
      });
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.match(res.body.detail, why);
      assert.equal((await call(server, 'GET', '/api/v1/apps/envy', { token: t.dave })).status, 404);
    }
    const lower = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({ name: 'envy', runtime: { kind: 'node', env: { 'bad-name': 'x' } } }),
    });
    assert.equal(lower.status, 400, 'names are upper-case words');
    const bad = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({ name: 'envy', runtime: { kind: 'node', port: 80, readiness: { path: 'ready' } } }),
    });
    assert.equal(bad.status, 400, 'a port below 1024 and a path without a slash are refused');
    const fine = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({
        name: 'envy',
        runtime: {
          kind: 'node',
          port: 8080,
          args: ['--quiet'],
          env: { LEDGER_REGION: 'eu' },
          readiness: { path: '/ready' },
        },
      }),
    });
    assert.equal(fine.status, 201, fine.text);
  });
});
