import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createSecureServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
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

// An app that calls out the way apps do (fetch), and tries the ways it must not (a socket, an address).
const caller = (
  platformPort: string,
  name = 'caller',
  yaml = 'name: caller\nowner: alice@example.com\npurpose: Call the bank API through the egress broker\ndataClasses: [internal]\naudience: { department: finance, maxUsers: 50 }\nintegrations: { egress: [api.bank.example.com, secure.bank.example.com] }\n',
) =>
  nodeApp(
    name,
    yaml,
    `const http = require('node:http');
const net = require('node:net');
http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://app');
  try {
    if (u.pathname === '/fetch') {
      const r = await fetch(u.searchParams.get('url'), { method: u.searchParams.get('method') || (u.searchParams.has('body') ? 'POST' : 'GET'), ...(u.searchParams.has('body') ? { body: u.searchParams.get('body') } : {}), headers: { 'content-type': 'text/plain', authorization: 'Bearer forged-by-the-app' } });
      return res.end(JSON.stringify({ status: r.status, egress: r.headers.get('x-microapp-egress'), detail: r.headers.get('x-microapp-egress-detail'), body: await r.text() }));
    }
    if (u.pathname === '/http-module') {
      return http.get(u.searchParams.get('url'), (r) => {
        let body = '';
        r.on('data', (d) => (body += d));
        r.on('end', () => res.end(JSON.stringify({ status: r.statusCode, egress: r.headers['x-microapp-egress'] || null, body })));
      }).on('error', (e) => res.end(JSON.stringify({ error: String(e) })));
    }
    if (u.pathname === '/tunnel') {
      const tls = require('node:tls');
      let answered = false;
      const answer = (o) => { if (!answered) { answered = true; res.end(JSON.stringify(o)); } };
      const req = http.request({ socketPath: '/run/egress/proxy.sock', method: 'CONNECT', path: u.searchParams.get('to') });
      req.on('connect', (r, socket) => {
        socket.on('error', () => {});
        if (r.statusCode !== 200) { socket.destroy(); return answer({ status: r.statusCode, egress: r.headers['x-microapp-egress'] || null }); }
        const secure = tls.connect({ socket, servername: u.searchParams.get('sni'), rejectUnauthorized: false }, () => {
          secure.write('GET / HTTP/1.1\\r\\nhost: ' + u.searchParams.get('sni') + '\\r\\nconnection: close\\r\\n\\r\\n');
        });
        let body = '';
        secure.on('data', (d) => (body += d));
        secure.on('end', () => answer({ status: 200, body }));
        secure.on('close', () => answer({ status: 200, body, error: 'closed' }));
        secure.on('error', (e) => answer({ status: 200, error: e.code || String(e) }));
      });
      req.on('error', (e) => answer({ error: String(e) }));
      return req.end();
    }
    if (u.pathname === '/socket') {
      const s = net.connect(${platformPort}, '127.0.0.1');
      s.on('connect', () => { s.destroy(); res.end('connected'); });
      s.on('error', (e) => res.end('refused: ' + e.code));
      return;
    }
    res.end('ok');
  } catch (e) { res.end(JSON.stringify({ error: String(e) })); }
}).listen(process.env.PORT);
`,
  );

describe('egress broker', () => {
  let server: TestServer;
  let upstream: Server;
  let secure: Server;
  let secureConnections = 0;
  let seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  let t: Awaited<ReturnType<typeof signInEveryone>>;
  let stop: () => Promise<void>;

  before(async () => {
    // A stand-in for the bank's API, on loopback; `--dev` pins its name to it (MICROAPP_DEV_EGRESS_HOSTS).
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ balance: 42 }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const port = (upstream.address() as AddressInfo).port;
    // A TLS service for tunnels, with a throwaway self-signed certificate.
    const certDir = mkdtempSync(join(tmpdir(), 'microapp-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=secure.bank.example.com',
        '-keyout',
        join(certDir, 'key.pem'),
        '-out',
        join(certDir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    secure = createSecureServer(
      { key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) },
      (_req, res) => res.end('secure-hello'),
    );
    secure.on('secureConnection', () => secureConnections++);
    rmSync(certDir, { recursive: true, force: true });
    await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
    const securePort = (secure.address() as AddressInfo).port;
    ({ server, t, stop } = await startBuildServer({
      MICROAPP_DEV_EGRESS_HOSTS: `api.bank.example.com=127.0.0.1:${port},ledger.corp.example.com=127.0.0.1:${port},secure.bank.example.com=127.0.0.1:${securePort}`,
      MICROAPP_EGRESS_TUNNELS: 'on',
    }));
    const manifest = lunchPoll({
      name: 'caller',
      owner: people.alice,
      purpose: 'Call the bank API through the egress broker',
      audience: { department: 'finance', maxUsers: 50 },
      integrations: { egress: ['api.bank.example.com', 'secure.bank.example.com'] },
    });
    const reg = await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: manifest });
    if (reg.body.app.state !== 'approved')
      await call(server, 'POST', '/api/v1/apps/caller/reviews', {
        token: t.bob,
        body: { decision: 'approve' },
      });
    const res = await call(server, 'POST', '/api/v1/apps/caller/builds', {
      token: t.alice,
      body: { source: await sourceArchive(caller(new URL(server.url).port)), deploy: true },
    });
    const build = await buildFinished(server, 'caller', res.body.id, t.alice);
    assert.equal(build.state, 'passed', `${build.error}`);
  });
  after(async () => {
    await stop();
    upstream.close();
    secure.close();
  });

  const app = async (path: string) => {
    const r = await viaGateway(server, 'caller', path, { authorization: `Bearer ${t.dave}` });
    assert.equal(r.status, 200, r.body);
    return JSON.parse(r.body) as { status: number; egress: string | null; body: string; error?: string };
  };
  const audit = async (action: string) =>
    (await call(server, 'GET', `/api/v1/audit/events?app=caller&action=${action}`, { token: t.ivan })).body
      .items as {
      reason: string;
      summary: Record<string, unknown>;
    }[];

  test('an approved host is reached through the broker, with nothing of the platform’s in the request', async () => {
    seen = [];
    const r = await app(`/fetch?url=${encodeURIComponent('http://api.bank.example.com/accounts?id=7')}`);
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.deepEqual(JSON.parse(r.body), { balance: 42 });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.url, '/accounts?id=7');
    assert.match(String(seen[0]!.headers.host), /^api\.bank\.example\.com/);
    assert.deepEqual(
      Object.keys(seen[0]!.headers).filter((h) => h.startsWith('x-microapp') || h === 'cookie'),
      [],
    );
    assert.equal(
      seen[0]!.headers.authorization,
      'Bearer forged-by-the-app',
      'an app’s own header goes to its own hosts',
    );
    const db = server.rawDb();
    try {
      const rows = await db.kysely
        .selectFrom('app_egress')
        .selectAll()
        .where('decision', '=', 'allowed')
        .execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.host, 'api.bank.example.com');
      assert.ok(Number(rows[0]!.bytes_in) > 0);
    } finally {
      await db.destroy();
    }
    const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${t.ivan}` } });
    assert.match(await metrics.text(), /microapp_app_egress_bytes_total\{app="caller",direction="in"\} \d+/);
  });

  test('a host outside the approved list, or an address, is refused with the reason, and audited', async () => {
    seen = [];
    const other = await app(`/fetch?url=${encodeURIComponent('http://evil.example.com/steal')}`);
    assert.equal(other.status, 403);
    assert.equal(other.egress, 'denied');
    assert.match(
      JSON.parse(other.body).detail,
      /evil\.example\.com is not in caller's approved egress \(api\.bank\.example\.com, secure\.bank\.example\.com\)/,
    );
    const ip = await app(
      `/fetch?url=${encodeURIComponent(`http://127.0.0.1:${new URL(server.url).port}/api/v1/meta`)}`,
    );
    assert.equal(ip.status, 403);
    assert.match(JSON.parse(ip.body).detail, /by name, never by address/);
    const metadata = await app(
      `/fetch?url=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`,
    );
    assert.equal(metadata.status, 403);
    assert.equal(seen.length, 0, 'nothing reached the outside');
    const denied = await audit('egress.denied');
    assert.ok(denied.some((e) => e.summary.host === 'evil.example.com'));
    assert.ok(denied.some((e) => e.summary.host === '169.254.169.254'));
  });

  test('Node’s http module goes through the broker too, under the same rules', async () => {
    seen = [];
    const ok = await app(
      `/http-module?url=${encodeURIComponent('http://api.bank.example.com/accounts?id=9')}`,
    );
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.deepEqual(JSON.parse(ok.body), { balance: 42 });
    assert.equal(seen[0]?.url, '/accounts?id=9');
    const refused = await app(`/http-module?url=${encodeURIComponent('http://evil.example.com/steal')}`);
    assert.equal(refused.status, 403);
    assert.equal(refused.egress, 'denied');
    assert.equal(seen.length, 1);
  });

  test('CONNECT: an approved host on 443 is tunnelled when its TLS server name matches; every other tunnel is refused', async () => {
    const tunnel = async (to: string, sni = 'secure.bank.example.com') =>
      (await app(`/tunnel?to=${encodeURIComponent(to)}&sni=${encodeURIComponent(sni)}`)) as {
        status?: number;
        egress?: string | null;
        body?: string;
        error?: string;
      };
    const before = secureConnections;
    const ok = await tunnel('secure.bank.example.com:443');
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.match(String(ok.body), /secure-hello/);
    assert.equal(secureConnections, before + 1);

    const wrongName = await tunnel('secure.bank.example.com:443', 'evil.example.com');
    assert.doesNotMatch(String(wrongName.body), /secure-hello/, JSON.stringify(wrongName));
    for (const [to, status] of [
      ['secure.bank.example.com:8443', 403],
      ['evil.example.com:443', 403],
      ['127.0.0.1:443', 403],
      [`[::1]:${new URL(server.url).port}`, 403],
      ['connector.ledger:443', 403],
      ['secure.bank.example.com', 400],
    ] as const) {
      const r = await tunnel(to);
      assert.equal(r.status, status, `${to}: ${JSON.stringify(r)}`);
      assert.equal(r.egress, 'denied');
    }
    assert.equal(secureConnections, before + 1, 'no refused tunnel reached the service');
    const reasons = (await audit('egress.denied')).map((e) => e.reason);
    for (const want of [
      /the TLS server name \(evil\.example\.com\) is not the host the tunnel was granted for \(secure\.bank\.example\.com\)/,
      /tunnels go to port 443 only, not 8443/,
      /connectors take plain requests/,
      /by name, never by address \(::1\)/,
    ])
      assert.ok(
        reasons.some((r) => want.test(r)),
        `${want}: ${JSON.stringify(reasons)}`,
      );
    const db = server.rawDb();
    try {
      // A tunnel is recorded when it closes, just after the app has its answer.
      const tunnels = () =>
        db.kysely
          .selectFrom('app_egress')
          .selectAll()
          .where('method', '=', 'CONNECT')
          .where('decision', '=', 'allowed')
          .execute();
      for (let i = 0; i < 50 && (await tunnels()).length === 0; i++)
        await new Promise((r) => setTimeout(r, 100));
      const rows = await tunnels();
      assert.equal(rows.length, 1);
      assert.ok(Number(rows[0]!.bytes_in) > 0 && Number(rows[0]!.bytes_out) > 0);
    } finally {
      await db.destroy();
    }
  });

  test('without the broker there is no way out: a direct socket to the platform fails', async () => {
    const r = await viaGateway(server, 'caller', '/socket', { authorization: `Bearer ${t.dave}` });
    assert.match(r.body, /^refused: E/);
  });

  test('a card number or an e-mail address in a request from an internal-data app is blocked (DLP)', async () => {
    seen = [];
    const card = await app(
      `/fetch?url=${encodeURIComponent('http://api.bank.example.com/notes')}&body=${encodeURIComponent('pay with 4111 1111 1111 1111 please')}`,
    );
    assert.equal(card.status, 451);
    assert.equal(card.egress, 'blocked_dlp');
    const detail = JSON.parse(card.body).detail as string;
    assert.match(detail, /card number \(1: 41…11\)/);
    assert.match(detail, /regulated data class/);
    assert.doesNotMatch(
      detail,
      /4111 1111 1111 1111|4111111111111111/,
      'the refusal does not repeat the number',
    );
    const email = await app(
      `/fetch?url=${encodeURIComponent('http://api.bank.example.com/notes')}&body=${encodeURIComponent('contact ann.lee@example.org')}`,
    );
    assert.equal(email.status, 451);
    assert.equal(seen.length, 0, 'the bank never received either');
    const blocked = await audit('egress.blocked');
    assert.equal(blocked.length, 2);
    assert.deepEqual(blocked.map((e) => e.summary.found).sort(), [['card_number x1'], ['email x1']]);
    const trail = JSON.stringify(await audit('egress.'));
    assert.doesNotMatch(
      trail,
      /4111111111111111|ann\.lee@example\.org/,
      'the audit trail holds no copy of the data',
    );
    const ok = await app(
      `/fetch?url=${encodeURIComponent('http://api.bank.example.com/notes')}&body=${encodeURIComponent('order 4111 1111 1111 1112 shipped')}`,
    );
    assert.equal(ok.status, 200, 'a number that fails the Luhn check is not a card');
  });

  test('the organization’s policy is asked on every request: a host closed after the deploy is refused', async () => {
    const close = `package microapp.org.egress

import rego.v1

deny contains sprintf("org policy: %s is closed for maintenance", [input.request.host]) if {
	input.request.method == "egress"
	input.request.host == "api.bank.example.com"
}

test_closes_the_bank if {
	count(deny) == 1 with input as {"request": {"method": "egress", "host": "api.bank.example.com"}}
}
`;
    const pushed = await call(server, 'POST', '/api/v1/policies', {
      token: t.carol,
      body: { modules: { 'egress/close.rego': close }, message: 'bank API maintenance' },
    });
    assert.equal(pushed.status, 201, pushed.text);
    seen = [];
    const r = await app(`/fetch?url=${encodeURIComponent('http://api.bank.example.com/accounts')}`);
    assert.equal(r.status, 403);
    assert.match(
      JSON.parse(r.body).detail,
      /policy: org policy: api\.bank\.example\.com is closed for maintenance/,
    );
    assert.equal(seen.length, 0);
  });

  test('a connector: the broker adds the credential, within its methods and paths; DLP on what it may receive', async () => {
    const canary = 'ledger-credential-canary-7f3a9c';
    const defined = await call(server, 'PUT', '/api/v1/connectors/ledger', {
      token: t.carol,
      body: {
        baseUrl: 'http://ledger.corp.example.com/api',
        credential: canary,
        methods: ['GET', 'POST'],
        paths: ['/entries'],
        dataClasses: ['internal', 'financial', 'pii'],
      },
    });
    assert.equal(defined.status, 200, defined.text);
    assert.equal(defined.body.hasCredential, true);
    assert.equal(
      (await call(server, 'PUT', '/api/v1/connectors/ledger', { token: t.alice, body: {} })).status,
      403,
    );
    const yaml =
      'name: payroll-notes\nowner: alice@example.com\npurpose: Note payroll questions against ledger entries\ndataClasses: [internal, pii]\naudience: { department: finance, maxUsers: 20 }\nintegrations: { connectors: [ledger] }\n';
    const manifest = {
      name: 'payroll-notes',
      owner: people.alice,
      purpose: 'Note payroll questions against ledger entries',
      dataClasses: ['internal', 'pii'],
      audience: { department: 'finance', maxUsers: 20 },
      integrations: { connectors: ['ledger'] },
    };
    const reg = await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: manifest });
    for (const reviewer of [t.bob, t.erin])
      if (reg.body.app.state !== 'approved')
        await call(server, 'POST', '/api/v1/apps/payroll-notes/reviews', {
          token: reviewer,
          body: { decision: 'approve' },
        });
    const res = await call(server, 'POST', '/api/v1/apps/payroll-notes/builds', {
      token: t.alice,
      body: {
        source: await sourceArchive(caller(new URL(server.url).port, 'payroll-notes', yaml)),
        deploy: true,
      },
    });
    assert.equal((await buildFinished(server, 'payroll-notes', res.body.id, t.alice)).state, 'passed');
    const use = async (path: string) => {
      const r = await viaGateway(server, 'payroll-notes', path, { authorization: `Bearer ${t.dave}` });
      assert.equal(r.status, 200, r.body);
      return JSON.parse(r.body) as {
        status: number;
        egress: string | null;
        detail: string | null;
        body: string;
      };
    };
    const url = (p: string) => encodeURIComponent(`http://connector.ledger${p}`);

    seen = [];
    const ok = await use(`/fetch?url=${url('/entries?month=2026-11')}`);
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.equal(seen[0]!.url, '/api/entries?month=2026-11', 'the connector’s base path comes first');
    assert.equal(
      seen[0]!.headers.authorization,
      `Bearer ${canary}`,
      'the broker’s credential, not the app’s forged one',
    );
    assert.match(String(seen[0]!.headers.host), /^ledger\.corp\.example\.com/);
    assert.doesNotMatch(JSON.stringify(ok), new RegExp(canary));

    const outside = await use(`/fetch?url=${url('/admin/users')}`);
    assert.equal(outside.status, 403);
    assert.match(JSON.parse(outside.body).detail, /allows \/entries, not \/admin\/users/);
    assert.equal((await use(`/fetch?url=${url('/entries/1')}&method=DELETE`)).status, 405);
    assert.equal((await use(`/fetch?url=${url('/entries%2f..%2fadmin')}`)).status, 400);
    const other = await use(`/fetch?url=${encodeURIComponent('http://connector.hr/people')}`);
    assert.equal(other.status, 403);
    assert.match(JSON.parse(other.body).detail, /does not use the connector hr/);

    seen = [];
    const card = await use(
      `/fetch?url=${url('/entries')}&body=${encodeURIComponent('refund card 4111 1111 1111 1111')}`,
    );
    assert.equal(card.status, 451);
    assert.match(
      JSON.parse(card.body).detail,
      /may not send to the connector ledger \(it would need the regulated data class on both\)/,
    );
    const email = await use(
      `/fetch?url=${url('/entries')}&body=${encodeURIComponent('ask ann.lee@example.org')}`,
    );
    assert.equal(
      email.status,
      200,
      'personal data may go where both the app and the connector are approved for it',
    );
    assert.equal(seen.length, 1, 'only the allowed call reached the ledger');
    const blocked = (
      await call(server, 'GET', '/api/v1/audit/events?app=payroll-notes&action=egress.blocked', {
        token: t.ivan,
      })
    ).body.items as { summary: { host: string; found: string[] } }[];
    assert.deepEqual(
      blocked.map((e) => [e.summary.host, e.summary.found]),
      [['connector.ledger', ['card_number x1']]],
    );

    // The organization's DLP policy masks IBANs and lets card numbers through flagged, for this connector,
    // and its own rule flags every national identifier sent there (which the ledger may receive).
    const modes = await call(server, 'POST', '/api/v1/policies', {
      token: t.carol,
      body: {
        modules: {
          'dlp/ledger.rego': `package microapp.dlp

import rego.v1

flag contains "national_id" if {
	input.destination.name == "ledger"
	some f in input.findings
	f.kind == "national_id"
}
`,
        },
        data: {
          microapp: { config: { dlp: { connectors: { ledger: { iban: 'mask', card_number: 'flag' } } } } },
        },
        message: 'ledger: mask IBANs, flag card numbers',
      },
    });
    assert.equal(modes.status, 201, modes.text);
    seen = [];
    const sent = await use(
      `/fetch?url=${url('/entries')}&body=${encodeURIComponent('refund GB82 WEST 1234 5698 7654 32 to card 4111-1111-1111-1111, ssn 123-45-6789')}`,
    );
    assert.equal(sent.status, 200, JSON.stringify(sent));
    assert.equal(
      seen[0]!.body,
      'refund GB** **** **** **** **54 32 to card 4111-1111-1111-1111, ssn 123-45-6789',
      'the IBAN is masked on its way, the flagged card number goes as it was',
    );
    assert.equal(seen[0]!.headers['content-length'], String(Buffer.byteLength(seen[0]!.body)));
    assert.equal(sent.egress, 'masked');
    assert.match(String(sent.detail), /masked iban x1; flagged card number x1, national id x1 for review/);
    const dlpTrail = (
      await call(server, 'GET', '/api/v1/audit/events?app=payroll-notes&action=egress.', { token: t.ivan })
    ).body.items as { action: string; summary: { found: string[] } }[];
    assert.deepEqual(
      dlpTrail
        .filter((e) => e.action === 'egress.masked' || e.action === 'egress.flagged')
        .map((e) => [e.action, e.summary.found])
        .sort(),
      [
        ['egress.flagged', ['card_number x1', 'national_id x1']],
        ['egress.masked', ['iban x1']],
      ],
    );
    assert.doesNotMatch(JSON.stringify(dlpTrail), /GB82WEST12345698765432|4111111111111111/);

    // The credential is nowhere an app, a user or an auditor can read.
    const listed = await call(server, 'GET', '/api/v1/connectors', { token: t.alice });
    assert.equal(listed.body.items[0].id, 'ledger');
    const everything = JSON.stringify([
      listed.body,
      (await call(server, 'GET', '/api/v1/audit/events?limit=1000', { token: t.ivan })).body,
    ]);
    assert.doesNotMatch(everything, new RegExp(canary));
  });
});
