import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  buildFinished,
  call,
  nodeApp,
  people,
  type signInEveryone,
  sourceArchive,
  startBuildServer,
  type TestServer,
  viaGateway,
} from './harness.ts';

const pgUrl = process.env.MICROAPP_TEST_POSTGRES_URL;

// An app that speaks just enough of PostgreSQL's wire protocol (startup, simple query) to use the
// connection URL the platform gave it in /run/secrets, over the broker's unix socket: no driver needed.
const orderLookup = (yaml: string, version: string) =>
  nodeApp(
    'order-lookup',
    yaml,
    `const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const secret = '/run/secrets/connector.orders-db';
function message(type, body) {
  const head = Buffer.alloc(5); head.write(type); head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}
function query(sql, database) {
  return new Promise((resolve) => {
    const u = new URL(fs.readFileSync(secret, 'utf8'));
    const params = Buffer.from('user\\0' + decodeURIComponent(u.username) + '\\0database\\0' + (database || decodeURIComponent(u.pathname.slice(1))) + '\\0\\0');
    const start = Buffer.alloc(8); start.writeInt32BE(8 + params.length); start.writeInt32BE(196608, 4);
    const sock = net.connect(u.searchParams.get('host') + '/.s.PGSQL.5432');
    sock.write(Buffer.concat([start, params]));
    let buf = Buffer.alloc(0); const rows = []; let error = null; let asked = false;
    const done = (r) => { sock.destroy(); resolve(r); };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
        const type = String.fromCharCode(buf[0]); const len = buf.readInt32BE(1);
        const body = buf.subarray(5, 1 + len); buf = buf.subarray(1 + len);
        if (type === 'R' && body.readInt32BE(0) === 3) sock.write(message('p', Buffer.from(decodeURIComponent(u.password) + '\\0')));
        if (type === 'E') error = (body.toString().split('\\0').find((f) => f.startsWith('M')) || 'Merror').slice(1);
        if (type === 'D') {
          const row = []; let o = 2;
          for (let i = 0; i < body.readInt16BE(0); i++) { const l = body.readInt32BE(o); o += 4; row.push(l < 0 ? null : body.subarray(o, o + l).toString()); o += Math.max(l, 0); }
          rows.push(row);
        }
        if (type === 'Z') { if (asked) return done({ rows, error }); asked = true; sock.write(message('Q', Buffer.from(sql + '\\0'))); }
      }
    });
    sock.on('error', (e) => done({ rows, error: e.code || String(e) }));
    sock.on('close', () => done({ rows, error: error || 'the connection closed' }));
  });
}
http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://app');
  if (u.pathname === '/query') return res.end(JSON.stringify(await query(u.searchParams.get('sql'), u.searchParams.get('database'))));
  if (u.pathname === '/url') return res.end(fs.existsSync(secret) ? fs.readFileSync(secret, 'utf8') : 'none');
  res.end('ok');
}).listen(process.env.PORT);
`,
    version,
  );

describe('ephemeral database credentials (a PostgreSQL connector)', {
  skip: !pgUrl && 'needs MICROAPP_TEST_POSTGRES_URL',
}, () => {
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;
  let admin: pg.Client;
  const schema = `orders_${randomBytes(4).toString('hex')}`;
  const canary = `pg-admin-canary-${randomBytes(6).toString('hex')}`;
  const yaml =
    'name: order-lookup\nowner: alice@example.com\npurpose: Look up an order’s amount for customer calls\ndataClasses: [internal, financial]\naudience: { department: finance, maxUsers: 20 }\nintegrations: { connectors: [orders-db] }\n';

  const app = async (path: string) => {
    const r = await viaGateway(server, 'order-lookup', path, { authorization: `Bearer ${t.dave}` });
    if (r.status !== 200)
      console.log(
        JSON.stringify(
          (await call(server, 'GET', '/api/v1/apps/order-lookup/logs', { token: t.alice })).body,
        ),
      );
    assert.equal(r.status, 200, r.body);
    return r.body;
  };
  const sqlOf = async (sql: string, database?: string) =>
    JSON.parse(
      await app(`/query?sql=${encodeURIComponent(sql)}${database ? `&database=${database}` : ''}`),
    ) as { rows: string[][]; error: string | null };
  const roleOf = async () => /postgresql:\/\/(mapp_[a-z0-9_]+):/.exec(await app('/url'))?.[1];
  const as = (role: string) => {
    const u = new URL(pgUrl!);
    u.username = role;
    return new pg.Client({ connectionString: u.href });
  };
  const roleExists = async (role: string) =>
    (await admin.query('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [role])).rows[0] as
      | { rolvaliduntil: Date }
      | undefined;
  const audit = async (action: string) =>
    (
      await call(server, 'GET', `/api/v1/audit/events?app=order-lookup&action=${action}&limit=100`, {
        token: t.ivan,
      })
    ).body.items as { reason: string | null; summary: Record<string, unknown> }[];
  const deploy = async (version: string) => {
    const res = await call(server, 'POST', '/api/v1/apps/order-lookup/builds', {
      token: t.alice,
      body: { source: await sourceArchive(orderLookup(yaml, version)), deploy: true },
    });
    const build = await buildFinished(server, 'order-lookup', res.body.id, t.alice);
    assert.equal(build.state, 'passed', `${build.error}`);
  };

  before(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.orders (id int primary key, amount numeric not null)`);
    await admin.query(`INSERT INTO ${schema}.orders VALUES (1, 120.50), (2, 99.00), (3, 15.25)`);
    await admin.query(`CREATE TABLE ${schema}.salaries (id int primary key, amount numeric not null)`);
    ({ server, t, stop } = await startBuildServer());
  });
  after(async () => {
    await stop?.();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  test('only admins define one; its grants are checked so they can carry no SQL', async () => {
    const base = new URL(pgUrl!);
    const baseUrl = `postgres://${base.username || 'postgres'}@${base.hostname}:${base.port || 5432}${base.pathname}`;
    const body = {
      baseUrl,
      credential: canary,
      privileges: ['SELECT'],
      tables: [`${schema}.orders`],
      dataClasses: ['internal', 'financial'],
    };
    const put = (token: string, b: unknown) =>
      call(server, 'PUT', '/api/v1/connectors/orders-db', { token, body: b });
    assert.equal((await put(t.alice, body)).status, 403);
    for (const [bad, why] of [
      [{ ...body, tables: ['orders; DROP TABLE x'] }, /tables/],
      [{ ...body, tables: ['"Orders"'] }, /tables/],
      [{ ...body, privileges: ['ALL'] }, /privileges/],
      [{ ...body, privileges: ['TRUNCATE'] }, /privileges/],
      [{ ...body, methods: ['GET'] }, /for HTTP connectors/],
      [{ ...body, baseUrl: baseUrl.replace('@', ':hunter2@') }, /password in `credential`/],
      [{ ...body, baseUrl: `postgres://${base.hostname}/test` }, /USER@HOST/],
      [{ ...body, leaseMinutes: 1 }, /leaseMinutes/],
      [{ ...body, baseUrl: 'https://ledger.example.com', methods: undefined }, /needs `methods` and `paths`/],
    ] as const) {
      const r = await put(t.carol, bad);
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.text}`);
      assert.match(r.text, why);
    }
    assert.equal(
      (await call(server, 'GET', '/api/v1/connectors', { token: t.alice })).body.items.length,
      0,
      'a refused definition changes nothing',
    );
    const ok = await put(t.carol, body);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.kind, 'postgres');
    assert.deepEqual(ok.body.grants, {
      privileges: ['SELECT'],
      tables: [`${schema}.orders`],
      leaseMinutes: 15,
    });
    assert.doesNotMatch(ok.text, new RegExp(canary));
  });

  test('each instance gets its own role with exactly the grants, over a tunnel; the app never sees the connector’s credential', async () => {
    const manifest = {
      name: 'order-lookup',
      owner: people.alice,
      purpose: 'Look up an order’s amount for customer calls',
      dataClasses: ['internal', 'financial'],
      audience: { department: 'finance', maxUsers: 20 },
      integrations: { connectors: ['orders-db'] },
    };
    const reg = await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: manifest });
    assert.equal(reg.status, 201, reg.text);
    for (const reviewer of [t.bob, t.erin])
      if (
        (await call(server, 'GET', '/api/v1/apps/order-lookup', { token: t.alice })).body.state !== 'approved'
      )
        await call(server, 'POST', '/api/v1/apps/order-lookup/reviews', {
          token: reviewer,
          body: { decision: 'approve' },
        });
    await deploy('1.0.0');

    const url = await app('/url');
    assert.match(
      url,
      /^postgresql:\/\/mapp_order_lookup_[0-9a-f]{12}:[A-Za-z0-9_-]{32}@localhost\/[^?]+\?host=\/run\/egress\/pg-0$/,
    );
    assert.doesNotMatch(url, new RegExp(canary), 'the connector’s own password stays with the platform');
    const role = (await roleOf())!;
    const password = new URL(url).password;
    const everything = JSON.stringify([
      (await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan })).body,
      (await call(server, 'GET', '/api/v1/apps/order-lookup', { token: t.alice })).body,
      (await call(server, 'GET', '/api/v1/connectors', { token: t.carol })).body,
    ]);
    assert.ok(
      everything.includes(role) && !everything.includes(password),
      'the role is audited, its password never',
    );
    const lease = (await roleExists(role))!.rolvaliduntil.getTime() - Date.now();
    assert.ok(
      lease > 13 * 60_000 && lease <= 15 * 60_000,
      `VALID UNTIL about 15 minutes ahead (${lease} ms)`,
    );

    assert.deepEqual(await sqlOf(`SELECT count(*), sum(amount) FROM ${schema}.orders`), {
      rows: [['3', '234.75']],
      error: null,
    });
    assert.match(String((await sqlOf(`SELECT * FROM ${schema}.salaries`)).error), /permission denied/);
    assert.match(
      String((await sqlOf(`INSERT INTO ${schema}.orders VALUES (4, 1)`)).error),
      /permission denied/,
    );
    assert.match(String((await sqlOf(`CREATE TABLE ${schema}.mine (x int)`)).error), /permission denied/);
    assert.match(
      String((await sqlOf(`ALTER ROLE ${role} SUPERUSER`)).error),
      /permission denied|must be superuser/,
    );
    const [issued] = await audit('database_credential.issued');
    assert.equal(issued?.summary.role, role);
    assert.deepEqual(issued?.summary.tables, [`${schema}.orders`]);
    // Each connection is recorded when it closes.
    const traffic = () =>
      server
        .rawDb()
        .kysely.selectFrom('app_egress')
        .select(['host', 'method', 'bytes_out', 'bytes_in'])
        .where('host', '=', 'connector.orders-db')
        .execute();
    for (let i = 0; i < 50 && (await traffic()).length < 5; i++) await new Promise((r) => setTimeout(r, 100));
    const rows = await traffic();
    assert.ok(rows.length >= 5, `each connection is recorded (${rows.length})`);
    assert.ok(rows.every((r) => r.method === 'TCP' && r.bytes_in > 0));
  });

  test('renewed while it runs; dropped when its lease runs out unrenewed', async () => {
    const role = (await roleOf())!;
    // As if the lease were almost over: a renewal moves it a whole lease ahead again.
    await admin.query(`ALTER ROLE ${role} VALID UNTIL '${new Date(Date.now() + 60_000).toISOString()}'`);
    const deploymentId = (await audit('database_credential.issued'))[0]!.summary.deploymentId as string;
    assert.equal(await server.internals.credentials.renew(deploymentId), 1);
    const lease = (await roleExists(role))!.rolvaliduntil.getTime() - Date.now();
    assert.ok(lease > 13 * 60_000, `renewed to a whole lease (${lease} ms)`);
    assert.equal((await audit('database_credential.renewed'))[0]?.summary.role, role);

    // A sweep after the lease (as if renewals had stopped: the server was killed) drops the role.
    assert.equal(await server.internals.credentials.revokeExpired(Date.now() + 20 * 60_000), 1);
    assert.equal(await roleExists(role), undefined);
    assert.match(String((await sqlOf('SELECT 1')).error), /does not exist|terminat|closed/);
    const [revoked] = await audit('database_credential.revoked');
    assert.equal(revoked?.summary.role, role);
    assert.equal(revoked?.reason, 'its lease expired without renewal');
    assert.equal(await server.internals.credentials.revokeExpired(Date.now() + 20 * 60_000), 0, 'once');
  });

  test('an upgrade gets a new role and drops the old one; decommissioning drops the last', async () => {
    await deploy('1.0.1');
    const replaced = (await roleOf())!;
    await deploy('1.0.2');
    const role = (await roleOf())!;
    assert.notEqual(role, replaced);
    assert.equal(await roleExists(replaced), undefined, 'the replaced instance’s role is gone');
    assert.equal(
      (await audit('database_credential.revoked')).find((e) => e.summary.role === replaced)?.reason,
      'replaced by 1.0.2',
    );
    assert.ok(await roleExists(role));
    assert.equal((await sqlOf(`SELECT count(*) FROM ${schema}.orders`)).rows[0]?.[0], '3');
    // The new role in a session of its own, as a client that keeps its connection open would hold it.
    const held = as(role);
    await held.connect();
    held.on('error', () => {});
    const retired = await call(server, 'POST', '/api/v1/apps/order-lookup/decommission', {
      token: t.alice,
      body: { reason: 'Orders moved to the new CRM' },
    });
    assert.equal(retired.status, 200, retired.text);
    assert.equal(await roleExists(role), undefined, 'the role is gone');
    await assert.rejects(held.query('SELECT 1'), 'its open session was ended');
    await assert.rejects(as(role).connect(), /does not exist/);
    const reasons = (await audit('database_credential.revoked')).map((e) => e.reason);
    assert.ok(reasons.includes('the app was decommissioned'), JSON.stringify(reasons));
    const live = await server
      .rawDb()
      .kysely.selectFrom('database_credentials')
      .select('role')
      .where('state', '=', 'issued')
      .execute();
    assert.deepEqual(live, []);
  });
});
