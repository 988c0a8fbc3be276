// Replicas that serve TLS themselves reach each other over TLS: a request for an app that runs on another
// replica is forwarded to it, with the caller's credentials, only when the peer proves it is a replica (it
// presents the platform's own certificate, or one the company CA issued for its address). Replicas share
// one certificate issued for the platform's name, not for a pod's address, so the first is the usual case.
// The peers here are plain Node.js HTTPS servers standing where another replica would answer; what is
// tested is this replica's forwarding, on a real database and lease, through a real HTTP server.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { startReplicaLease } from '../src/modules/replicas/replica-lease.ts';
import { createReplicaForwarding, hopHeader } from '../src/modules/runtime/replica-forwarding.ts';
import { call, companyCa, lunchPoll, signInEveryone, startTestServer, type TestServer } from './harness.ts';

/** A self-signed certificate for a name only (no IP address), as a platform's shared certificate is. */
function selfSigned(dir: string, name: string): { key: string; cert: string } {
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return {
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    cert: readFileSync(join(dir, `${name}.crt`), 'utf8'),
  };
}

/** A certificate the company CA (from `companyCa(dir)`) issues for `name` only. */
function companyIssued(dir: string, name: string): { key: string; cert: string } {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\n`);
  for (const args of [
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    ],
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ],
  ]) {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  return {
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    cert: readFileSync(join(dir, `${name}.crt`), 'utf8'),
  };
}

describe('replicas forward to each other over TLS, and only to a peer that proves it is one', () => {
  let server: TestServer;
  let dir: string;
  let front: FastifyInstance;
  let platformCert: { key: string; cert: string };
  const peers: Server[] = [];
  let seen: { path: string; headers: Record<string, unknown> }[] = [];
  let companyPem: string;
  let companyPair: { key: string; cert: string };

  /** A peer at https://127.0.0.1:port presenting `pair`; records what reaches it. */
  async function peer(pair: { key: string; cert: string }): Promise<string> {
    const s = createHttpsServer(pair, (req, res) => {
      seen.push({ path: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('answered by the replica running it');
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    peers.push(s);
    return `https://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'microapp-replica-tls-'));
    platformCert = selfSigned(dir, 'microapp.bank.example');
    const company = companyCa(dir);
    companyPem = readFileSync(company.ca, 'utf8');
    companyPair = { key: company.key, cert: company.cert };
    writeFileSync(join(dir, 'tls.crt'), platformCert.cert);

    server = await startTestServer('sqlite');
    const t = await signInEveryone(server);
    const app = await call(server, 'POST', '/api/v1/apps', {
      token: t.dave,
      body: lunchPoll({ name: 'poll-elsewhere', audience: { department: 'finance' } }),
    });
    assert.equal(app.status, 201, app.text);
    const db = server.rawDb().kysely;
    const appId = app.body.app.id as string;
    // The app runs on replica-b, as that replica recorded it.
    await db
      .insertInto('deployments')
      .values({
        id: 'dep_elsewhere',
        app_id: appId,
        env: 'live',
        version: '1.0.0',
        digest: `sha256:${'0'.repeat(64)}`,
        state: 'running',
        started_by: 'dave@example.com',
        started_at: new Date().toISOString(),
        stopped_at: null,
        replica_id: 'replica-b',
      })
      .execute();
    const lease = await startReplicaLease({ db, id: 'replica-a', version: 'test', leaseMs: 60_000 });
    const forwarding = createReplicaForwarding({
      db,
      lease,
      tls: { certificate: () => readFileSync(join(dir, 'tls.crt'), 'utf8'), companyCa: companyPem },
    });
    front = Fastify();
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      if (!(await forwarding.forward(request, reply, 'poll-elsewhere')))
        reply.code(404).send('not forwarded');
    };
    front.all('/', handler);
    front.all('/*', handler);
    await front.listen({ port: 0, host: '127.0.0.1' });
  });

  after(async () => {
    await front?.close();
    for (const p of peers) p.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Where replica-b says it is reached (what it advertised). */
  async function replicaBAt(url: string) {
    const db = server.rawDb().kysely;
    const until = new Date(Date.now() + 60_000).toISOString();
    await db
      .insertInto('replicas')
      .values({
        id: 'replica-b',
        started_at: new Date().toISOString(),
        lease_until: until,
        version: 'test',
        url,
      })
      .onConflict((oc) => oc.column('id').doUpdateSet({ url, lease_until: until }))
      .execute();
    // The forwarder remembers where an app runs for a second.
    await new Promise((r) => setTimeout(r, 1100));
  }

  function through(path: string): Promise<{ status: number; body: string }> {
    return new Promise((done, fail) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: (front.server.address() as AddressInfo).port,
          path,
          headers: { authorization: 'Bearer mat_a-person-s-token', cookie: 'microapp_app_session=s3cret' },
        },
        (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => done({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', fail);
      req.end();
    });
  }

  test("a peer presenting the platform's own certificate (issued for its name, not its address) gets the request", async () => {
    await replicaBAt(await peer(platformCert));
    seen = [];
    const answer = await through('/items?page=2');
    assert.equal(answer.status, 200, answer.body);
    assert.equal(answer.body, 'answered by the replica running it');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.path, '/items?page=2');
    assert.equal(seen[0]!.headers[hopHeader], 'replica-a', 'marked, so it is never forwarded again');
    assert.equal(seen[0]!.headers.authorization, 'Bearer mat_a-person-s-token');
  });

  test('a peer with a certificate the company CA issued for its address gets it too', async () => {
    await replicaBAt(await peer(companyPair));
    seen = [];
    assert.equal((await through('/')).status, 200);
    assert.equal(seen.length, 1);
  });

  test('an impostor (another certificate, valid for nothing we trust) gets nothing: no request, no credential', async () => {
    await replicaBAt(await peer(selfSigned(dir, 'impostor.example')));
    seen = [];
    const answer = await through('/');
    assert.equal(answer.status, 502, answer.body);
    assert.match(answer.body, /did not answer/);
    assert.deepEqual(seen, [], 'the impostor saw no request at all');
    // Nor does a peer whose company certificate names another host than the one it is reached at.
    await replicaBAt(await peer(companyIssued(dir, 'files.bank.example')));
    seen = [];
    assert.equal((await through('/')).status, 502);
    assert.deepEqual(seen, []);
  });
});
