import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { cli } from '../../cli/test/cli-harness.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import {
  bankReconciliation,
  call,
  engines,
  lunchPoll,
  people,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

const pgUrl = process.env.MICROAPP_TEST_POSTGRES_URL;

/**
 * A stand-in for HashiCorp Vault on loopback that keeps to its documented HTTP API
 * (developer.hashicorp.com/vault/api-docs): KV version 2 (`POST`/`GET /v1/{mount}/data/{path}`,
 * `DELETE /v1/{mount}/metadata/{path}`), the database secrets engine (`GET /v1/{mount}/creds/{role}`, which
 * runs the role's creation statements on a real PostgreSQL as Vault does) and leases
 * (`PUT /v1/sys/leases/renew`, `PUT /v1/sys/leases/revoke`). Every call needs `X-Vault-Token`; a wrong one
 * gets 403 `{"errors":["permission denied"]}`.
 */
function vaultStandIn(token: string, admin: () => pg.Client | null) {
  const kv = new Map<string, { data: Record<string, string>; version: number }>();
  const roles = new Map<string, { grants: string[]; ttl: number; maxTtl: number }>();
  const leases = new Map<string, { username: string; issuedAt: number; seconds: number; maxTtl: number }>();
  const calls: { method: string; path: string; body: unknown }[] = [];
  let accepted = token;
  const send = (res: ServerResponse, status: number, body?: unknown) => {
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    for await (const c of req) raw += c;
    const body = raw ? JSON.parse(raw) : undefined;
    const path = new URL(req.url ?? '/', 'http://vault').pathname;
    calls.push({ method: req.method ?? '', path, body });
    if (req.headers['x-vault-token'] !== accepted) return send(res, 403, { errors: ['permission denied'] });
    let m = /^\/v1\/secret\/data\/(.+)$/.exec(path);
    if (m && req.method === 'POST') {
      const version = (kv.get(m[1]!)?.version ?? 0) + 1;
      kv.set(m[1]!, { data: body.data, version });
      return send(res, 200, { data: { version, created_time: new Date().toISOString(), destroyed: false } });
    }
    if (m && req.method === 'GET') {
      const e = kv.get(m[1]!);
      if (!e) return send(res, 404, { errors: [] });
      return send(res, 200, { data: { data: e.data, metadata: { version: e.version } } });
    }
    m = /^\/v1\/secret\/metadata\/(.+)$/.exec(path);
    if (m && req.method === 'DELETE') {
      kv.delete(m[1]!);
      return send(res, 204);
    }
    m = /^\/v1\/database\/creds\/([\w.-]+)$/.exec(path);
    if (m && req.method === 'GET') {
      const role = roles.get(m[1]!);
      if (!role) return send(res, 400, { errors: [`unknown role: ${m[1]}`] });
      const username = `v-token-${m[1]}-${randomBytes(5).toString('hex')}`.slice(0, 63);
      const password = randomBytes(18).toString('base64url');
      const until = new Date(Date.now() + role.ttl * 1000).toISOString();
      await admin()!.query(`CREATE ROLE "${username}" LOGIN PASSWORD '${password}' VALID UNTIL '${until}'`);
      for (const g of role.grants) await admin()!.query(g.replaceAll('{{name}}', `"${username}"`));
      const leaseId = `database/creds/${m[1]}/${randomBytes(8).toString('hex')}`;
      leases.set(leaseId, { username, issuedAt: Date.now(), seconds: role.ttl, maxTtl: role.maxTtl });
      return send(res, 200, {
        lease_id: leaseId,
        lease_duration: role.ttl,
        renewable: true,
        data: { username, password },
      });
    }
    if (path === '/v1/sys/leases/renew' && req.method === 'PUT') {
      const lease = leases.get(body.lease_id);
      if (!lease) return send(res, 400, { errors: ['lease not found'] });
      // Vault caps a renewal at the role's max_ttl, counted from the issue.
      const left = lease.maxTtl - Math.floor((Date.now() - lease.issuedAt) / 1000);
      const seconds = Math.min(Number(body.increment), left);
      const until = new Date(Date.now() + seconds * 1000).toISOString();
      await admin()!.query(`ALTER ROLE "${lease.username}" VALID UNTIL '${until}'`);
      return send(res, 200, { lease_id: body.lease_id, lease_duration: seconds, renewable: true });
    }
    if (path === '/v1/sys/leases/revoke' && req.method === 'PUT') {
      const lease = leases.get(body.lease_id);
      if (lease) {
        await admin()!.query(`DROP OWNED BY "${lease.username}"`);
        await admin()!.query(`DROP ROLE IF EXISTS "${lease.username}"`);
        leases.delete(body.lease_id);
      }
      return send(res, 204);
    }
    return send(res, 404, { errors: [] });
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => send(res, 500, { errors: [String(e)] }));
  });
  return {
    server,
    kv,
    roles,
    leases,
    calls,
    refuse(yes: boolean) {
      accepted = yes ? 'another-token' : token;
    },
    async listen() {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  };
}

test('Vault settings are checked at start, with what to set', () => {
  const base = { dev: true, port: 0, devIdpPort: 0, dataDir: '/tmp/microapp-vault-config' };
  assert.throws(
    () => loadConfig(base, { MICROAPP_SECRETS_BACKEND: 'vault' }),
    (e: Error) => e instanceof ConfigError && /needs MICROAPP_VAULT_ADDR/.test(e.message),
  );
  assert.throws(
    () => loadConfig(base, { MICROAPP_VAULT_ADDR: 'http://127.0.0.1:8200' }),
    (e: Error) => e instanceof ConfigError && /no token: set MICROAPP_VAULT_TOKEN_FILE/.test(e.message),
  );
  assert.throws(
    () =>
      loadConfig(base, {
        MICROAPP_VAULT_ADDR: 'http://127.0.0.1:8200',
        MICROAPP_VAULT_TOKEN: 't',
        MICROAPP_VAULT_KV_MOUNT: '../sys',
      }),
    (e: Error) => e instanceof ConfigError && /MICROAPP_VAULT_KV_MOUNT must be a Vault path/.test(e.message),
  );
  const ok = loadConfig(base, { MICROAPP_VAULT_ADDR: 'http://127.0.0.1:8200', MICROAPP_VAULT_TOKEN: 't' });
  assert.equal(ok.vault?.secretsBackend, 'local', 'Vault for database roles only, unless asked');
});

for (const engine of engines()) {
  describe(`app secrets in Vault's KV engine (${engine})`, () => {
    const token = `hvs.${randomBytes(12).toString('hex')}`;
    const vault = vaultStandIn(token, () => null);
    let server: TestServer;
    let t: Awaited<ReturnType<typeof signInEveryone>>;
    let appId: string;
    const canary = `vault-canary-${randomBytes(10).toString('hex')}`;
    const path = 'bank-reconciliation/secrets/LEDGER_READ_TOKEN';

    before(async () => {
      const addr = await vault.listen();
      server = await startTestServer(engine, {
        env: {
          MICROAPP_VAULT_ADDR: addr,
          MICROAPP_VAULT_TOKEN: token,
          MICROAPP_SECRETS_BACKEND: 'vault',
        },
      });
      t = await signInEveryone(server);
      const reg = await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: bankReconciliation() });
      appId = reg.body.app.id;
    });
    after(async () => {
      await server.stop();
      vault.server.close();
    });

    test('a value goes to Vault under the platform’s token; the database keeps who set which version, never the value', async () => {
      const res = await call(server, 'PUT', `/api/v1/apps/${path}`, {
        token: t.alice,
        body: { value: canary },
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.version, 1);
      assert.deepEqual(vault.kv.get(`microapp/${appId}/LEDGER_READ_TOKEN`), {
        data: { value: canary },
        version: 1,
      });
      const raw = server.rawDb();
      const rows = await raw.kysely.selectFrom('app_secrets').selectAll().execute();
      await raw.destroy();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.kek_id, 'vault');
      assert.ok(!JSON.stringify(rows).includes(canary), 'no copy in the database');
      assert.deepEqual(await server.internals.secrets.valuesFor(appId), { LEDGER_READ_TOKEN: canary });
      // Rotated in Vault by its own tooling: the next instance to start gets the new value.
      vault.kv.set(`microapp/${appId}/LEDGER_READ_TOKEN`, { data: { value: `${canary}-2` }, version: 2 });
      assert.deepEqual(await server.internals.secrets.valuesFor(appId), { LEDGER_READ_TOKEN: `${canary}-2` });
      const trail = await call(server, 'GET', '/api/v1/audit/events?action=secret.set', { token: t.ivan });
      assert.equal(trail.body.items[0].summary.store, 'vault');
      assert.ok(!trail.text.includes(canary));
    });

    test('when Vault refuses, the owner is told why and nothing changes', async () => {
      vault.refuse(true);
      try {
        const res = await call(server, 'PUT', `/api/v1/apps/${path}`, {
          token: t.alice,
          body: { value: `${canary}-3` },
        });
        assert.equal(res.status, 403, res.text);
        assert.match(
          res.body.detail,
          /Vault refused a secret write \(403\): permission denied: check the platform token’s policy/,
        );
        assert.ok(!res.text.includes(canary));
        await assert.rejects(server.internals.secrets.valuesFor(appId), /Vault refused a secret read/);
      } finally {
        vault.refuse(false);
      }
      const list = await call(server, 'GET', '/api/v1/apps/bank-reconciliation/secrets', { token: t.alice });
      assert.equal(list.body.items.find((s: { name: string }) => s.name === 'LEDGER_READ_TOKEN').version, 1);
      assert.equal(vault.kv.get(`microapp/${appId}/LEDGER_READ_TOKEN`)?.data.value, `${canary}-2`);
    });

    test('deleting the secret deletes it in Vault, every version', async () => {
      const res = await call(server, 'DELETE', `/api/v1/apps/${path}`, { token: t.alice });
      assert.equal(res.status, 204, res.text);
      assert.equal(vault.kv.has(`microapp/${appId}/LEDGER_READ_TOKEN`), false);
      assert.ok(
        vault.calls.some(
          (c) =>
            c.method === 'DELETE' && c.path === `/v1/secret/metadata/microapp/${appId}/LEDGER_READ_TOKEN`,
        ),
      );
      assert.deepEqual(await server.internals.secrets.valuesFor(appId), {});
    });
  });
}

describe('database roles from Vault’s database secrets engine', {
  skip: !pgUrl && 'needs MICROAPP_TEST_POSTGRES_URL',
}, () => {
  const token = `hvs.${randomBytes(12).toString('hex')}`;
  let admin: pg.Client;
  const vault = vaultStandIn(token, () => admin);
  let server: TestServer;
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  const schema = `vault_${randomBytes(4).toString('hex')}`;
  const database = new URL(pgUrl ?? 'postgres://x/test').pathname.slice(1);
  const brokered = async (connector: string) => {
    const app = (await call(server, 'GET', '/api/v1/apps/order-desk', { token: t.alice })).body;
    return {
      name: 'order-desk',
      appId: app.id,
      version: '1.0.0',
      owner: people.alice,
      department: 'finance',
      tier: app.tier,
      manifest: { ...app.manifest, integrations: { connectors: [connector] } },
    };
  };
  const roleExists = async (role: string) =>
    (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;

  before(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`CREATE TABLE ${schema}.orders (id int primary key, amount numeric not null)`);
    await admin.query(`INSERT INTO ${schema}.orders VALUES (1, 120.50), (2, 99.00)`);
    await admin.query(`CREATE TABLE ${schema}.salaries (id int primary key, amount numeric not null)`);
    vault.roles.set('orders-read', {
      grants: [`GRANT USAGE ON SCHEMA ${schema} TO {{name}}`, `GRANT SELECT ON ${schema}.orders TO {{name}}`],
      ttl: 600,
      maxTtl: 3600,
    });
    vault.roles.set('too-broad', {
      grants: [
        `GRANT USAGE ON SCHEMA ${schema} TO {{name}}`,
        `GRANT SELECT ON ${schema}.orders, ${schema}.salaries TO {{name}}`,
      ],
      ttl: 600,
      maxTtl: 3600,
    });
    const addr = await vault.listen();
    server = await startTestServer('sqlite', {
      env: { MICROAPP_VAULT_ADDR: addr, MICROAPP_VAULT_TOKEN: token },
    });
    t = await signInEveryone(server);
    const reg = await call(server, 'POST', '/api/v1/apps', {
      token: t.alice,
      body: lunchPoll({
        name: 'order-desk',
        owner: people.alice,
        purpose: 'Look up order amounts for customer calls',
        dataClasses: ['internal', 'financial'],
        integrations: { connectors: ['orders-vault', 'orders-broad'] },
      }),
    });
    assert.equal(reg.status, 201, reg.text);
  });
  after(async () => {
    await server?.stop();
    vault.server.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  test('a connector names a Vault role instead of holding a password; without a Vault it is refused', async () => {
    const u = new URL(pgUrl!);
    const body = {
      baseUrl: `postgres://${u.hostname}:${u.port || 5432}/${database}`,
      privileges: ['SELECT'],
      tables: [`${schema}.orders`],
      vaultRole: 'orders-read',
      dataClasses: ['internal', 'financial'],
    };
    for (const [bad, why] of [
      [{ ...body, credential: 'x' }, /no user and no `credential`/],
      [{ ...body, baseUrl: `postgres://admin@${u.hostname}/${database}` }, /no user/],
      [{ ...body, vaultRole: '../sys' }, /vaultRole/],
    ] as const) {
      const r = await call(server, 'PUT', '/api/v1/connectors/orders-vault', { token: t.carol, body: bad });
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, why);
    }
    const ok = await call(server, 'PUT', '/api/v1/connectors/orders-vault', { token: t.carol, body });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.grants.vault, { mount: 'database', role: 'orders-read' });
    // The same through the CLI, as an admin types it.
    const broad = await cli(
      { MICROAPP_SERVER: server.url, MICROAPP_TOKEN: t.carol, MICROAPP_CONFIG_DIR: `${server.dataDir}/cli` },
      'connectors',
      'set',
      'orders-broad',
      '--base-url',
      body.baseUrl,
      '--privileges',
      'SELECT',
      '--tables',
      `${schema}.orders`,
      '--vault-role',
      'too-broad',
      '--data-classes',
      'internal,financial',
    );
    assert.equal(broad.code, 0, broad.stderr);
    assert.match(
      broad.stdout,
      /each app instance gets its own credentials from Vault \(database\/creds\/too-broad\), checked against these grants/,
    );

    const plain = await startTestServer('sqlite');
    try {
      const tc = await signInEveryone(plain);
      const r = await call(plain, 'PUT', '/api/v1/connectors/orders-vault', { token: tc.carol, body });
      assert.equal(r.status, 400);
      assert.match(r.body.detail, /needs a Vault: this platform has none configured/);
    } finally {
      await plain.stop();
    }
  });

  test('each instance gets Vault’s credentials, checked against the declared grants, renewed and revoked through the lease', async () => {
    const deploymentId = `dep_vault${randomBytes(4).toString('hex')}`;
    const files = await server.internals.credentials.issue(deploymentId, await brokered('orders-vault'));
    const url = new URL(files['connector.orders-vault']!);
    const role = decodeURIComponent(url.username);
    assert.match(role, /^v-token-orders-read-/);
    assert.ok(await roleExists(role));
    const as = new pg.Client({
      host: new URL(pgUrl!).hostname,
      port: Number(new URL(pgUrl!).port || 5432),
      user: role,
      password: decodeURIComponent(url.password),
      database,
    });
    await as.connect();
    assert.equal((await as.query(`SELECT count(*)::int AS n FROM ${schema}.orders`)).rows[0].n, 2);
    await assert.rejects(as.query(`SELECT * FROM ${schema}.salaries`), /permission denied/);
    await as.end();
    const [lease] = [...vault.leases.keys()];

    assert.equal(await server.internals.credentials.renew(deploymentId), 1);
    const renewal = vault.calls.find((c) => c.path === '/v1/sys/leases/renew');
    assert.deepEqual(renewal?.body, { lease_id: lease, increment: 15 * 60 });

    await server.internals.credentials.revoke(deploymentId, 'the instance stopped');
    assert.ok(
      vault.calls.some(
        (c) => c.path === '/v1/sys/leases/revoke' && (c.body as { lease_id: string }).lease_id === lease,
      ),
    );
    assert.equal(await roleExists(role), false, 'Vault dropped the role');
    const trail = (
      await call(server, 'GET', '/api/v1/audit/events?app=order-desk&action=database_credential.', {
        token: t.ivan,
      })
    ).body.items as { action: string; summary: Record<string, unknown> }[];
    assert.deepEqual(trail.map((e) => e.action).sort(), [
      'database_credential.issued',
      'database_credential.renewed',
      'database_credential.revoked',
    ]);
    const issued = trail.find((e) => e.action === 'database_credential.issued')!;
    assert.equal(issued.summary.issuedBy, 'vault:database/orders-read');
    assert.ok(!JSON.stringify(trail).includes(decodeURIComponent(url.password)));
  });

  test('a lease shorter than the connector’s minutes is renewed on Vault’s clock, not the connector’s', async () => {
    vault.roles.get('orders-read')!.ttl = 3;
    try {
      const deploymentId = `dep_short${randomBytes(4).toString('hex')}`;
      await server.internals.credentials.issue(deploymentId, await brokered('orders-vault'));
      const lease = [...vault.leases.keys()].at(-1)!;
      const renewed = () =>
        vault.calls.some(
          (c) => c.path === '/v1/sys/leases/renew' && (c.body as { lease_id: string }).lease_id === lease,
        );
      for (let i = 0; i < 40 && !renewed(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(renewed(), 'renewed within the 3-second lease (a third of the way), not after 5 minutes');
      await server.internals.credentials.revoke(deploymentId, 'the instance stopped');
      assert.equal(vault.leases.has(lease), false);
    } finally {
      vault.roles.get('orders-read')!.ttl = 600;
    }
  });

  test('a Vault role that grants more than the connector declares is revoked at once and the start refused', async () => {
    const before = vault.leases.size;
    await assert.rejects(
      server.internals.credentials.issue(
        `dep_broad${randomBytes(4).toString('hex')}`,
        await brokered('orders-broad'),
      ),
      new RegExp(
        `grants more than the connector orders-broad declares \\(SELECT on ${schema}\\.salaries\\); the credentials were revoked`,
      ),
    );
    assert.equal(vault.leases.size, before, 'the lease was revoked');
    const left = await admin.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-token-too-broad-%'");
    assert.deepEqual(left.rows, []);
  });
});
