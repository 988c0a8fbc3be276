import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { buildHttpApp } from '../src/api/build-app.ts';
import {
  bankReconciliation,
  call,
  lunchPoll,
  signInEveryone,
  startTestServer,
  type TestServer,
} from './harness.ts';

type Who = 'anonymous' | 'creator' | 'otherCreator' | 'reviewer' | 'admin' | 'auditor';
const everyone: Who[] = ['anonymous', 'creator', 'otherCreator', 'reviewer', 'admin', 'auditor'];
const users: Who[] = everyone.filter((w) => w !== 'anonymous');

/**
 * Who may call each route. A principal outside `allowed` must get 401 (anonymous) or 403, or the
 * status in `denied`; one inside must pass the access gate. A route missing here fails the test.
 */
const expectations: Record<string, { allowed: Who[]; denied?: Partial<Record<Who, number>> }> = {
  'GET /healthz': { allowed: everyone },
  'GET /readyz': { allowed: everyone },
  'GET /api/v1/meta': { allowed: everyone },
  'GET /api/openapi.json': { allowed: everyone },
  'GET /api/v1/schemas/manifest.json': { allowed: everyone },
  'GET /auth/login': { allowed: everyone },
  'GET /auth/callback': { allowed: everyone },
  'GET /auth/apps/:name': { allowed: everyone },
  'POST /api/v1/auth/cli/token': { allowed: everyone },
  // No person's credential opens it: a pod's service-account token, checked in the route
  // (kubernetes-artifacts.test.ts); here, with no cluster issuer set, it answers 409 to everyone.
  'GET /api/v1/kubernetes/artifacts/:digest': { allowed: everyone },
  'POST /auth/logout': { allowed: users },
  'GET /api/v1/auth/session': { allowed: users },
  'GET /api/v1/auth/browser-session': { allowed: everyone },
  'POST /api/v1/tokens': { allowed: users },
  'GET /api/v1/tokens': { allowed: users },
  'DELETE /api/v1/tokens/:id': { allowed: users },
  'POST /api/v1/apps': { allowed: ['creator', 'otherCreator', 'admin'] },
  'GET /api/v1/apps': { allowed: users },
  'GET /api/v1/apps/:name': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/approvals': { allowed: ['reviewer', 'admin', 'auditor'] },
  'POST /api/v1/apps/:name/reviews': { allowed: ['reviewer'] },
  'GET /api/v1/audit/events': { allowed: users },
  'GET /api/v1/audit/verify': { allowed: ['admin', 'auditor'] },
  'POST /api/v1/audit/verify': { allowed: ['admin', 'auditor'] },
  'POST /api/v1/audit/checkpoints': { allowed: ['admin', 'auditor'] },
  'GET /api/v1/audit/checkpoints/latest': { allowed: ['admin', 'auditor'] },
  'GET /api/v1/audit/checkpoints/key.pub': { allowed: everyone },
  'POST /api/v1/policies': { allowed: ['admin'] },
  'GET /api/v1/policies': { allowed: users },
  'POST /api/v1/policies/evaluate': { allowed: users },
  'GET /api/v1/policies/decisions': { allowed: ['reviewer', 'admin', 'auditor'] },
  'GET /api/v1/apps/:name/access': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'POST /api/v1/advisories': { allowed: ['admin'] },
  'GET /api/v1/keys': { allowed: everyone },
  'PUT /api/v1/apps/:name/secrets/:secret': { allowed: users },
  'GET /api/v1/apps/:name/secrets': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'DELETE /api/v1/apps/:name/secrets/:secret': {
    allowed: ['creator', 'admin'],
    denied: { otherCreator: 404 },
  },
  'POST /api/v1/secrets/rewrap': { allowed: ['admin'] },
  'POST /api/v1/apps/:name/deployments': { allowed: users },
  'POST /api/v1/apps/:name/kubernetes-manifests': { allowed: users },
  'DELETE /api/v1/apps/:name/deployments/current': {
    allowed: ['creator', 'admin'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/keys/identity': { allowed: everyone },
  'POST /api/v1/apps/:name/rollback': { allowed: ['creator', 'admin'], denied: { otherCreator: 404 } },
  'GET /api/v1/apps/:name/usage': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /metrics': { allowed: ['admin', 'auditor'] },
  'GET /api/v1/keys/signing.pub': { allowed: everyone },
  'POST /api/v1/apps/:name/versions': { allowed: users },
  'GET /api/v1/apps/:name/versions': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/apps/:name/versions/:version': { allowed: users },
  'GET /api/v1/apps/:name/versions/:version/artifact': { allowed: users },
  'GET /api/v1/advisories': { allowed: users },
  'POST /api/v1/scans': { allowed: users },
  'POST /api/v1/apps/:name/scan-exceptions': { allowed: ['reviewer'] },
  'GET /api/v1/apps/:name/scan-exceptions': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'DELETE /api/v1/apps/:name/scan-exceptions/:id': { allowed: ['reviewer', 'admin'] },
  'POST /api/v1/apps/:name/admission': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/apps/:name/lifecycle': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'POST /api/v1/apps/:name/renewal': { allowed: users },
  'POST /api/v1/apps/:name/renewal/approve': { allowed: ['reviewer'] },
  'PUT /api/v1/apps/:name/exemption': { allowed: ['admin'] },
  'DELETE /api/v1/apps/:name/exemption': { allowed: ['admin'] },
  'POST /api/v1/apps/:name/decommission': { allowed: users },
  'POST /api/v1/apps/:name/restore': { allowed: ['creator', 'admin'], denied: { otherCreator: 404 } },
  'GET /api/v1/notifications': { allowed: users },
  'POST /api/v1/notifications/:id/read': { allowed: users },
  'GET /api/v1/notifications/preferences': { allowed: users },
  'PUT /api/v1/notifications/preferences': { allowed: users },
  'GET /api/v1/jobs': { allowed: ['admin', 'auditor'] },
  'POST /api/v1/dev/clock': { allowed: ['admin'] },
  'POST /api/v1/users/:email/disable': { allowed: ['admin'] },
  'POST /api/v1/keys/rotate': { allowed: ['admin'] },
  'POST /api/v1/apps/:name/graduation': { allowed: ['admin'] },
  'GET /api/v1/apps/:name/export': {
    allowed: ['creator', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'POST /api/v1/apps/:name/owner': { allowed: users },
  'POST /api/v1/assessments': { allowed: users },
  'POST /api/v1/access-requests': { allowed: users },
  'GET /api/v1/templates': { allowed: users },
  'GET /api/v1/apps/:name/versions/:version/verification': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/apps/:name/logs': {
    allowed: ['creator', 'admin'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/apps/:name/deployments': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'POST /api/v1/apps/:name/promotions': { allowed: ['creator', 'admin'], denied: { otherCreator: 404 } },
  'GET /api/v1/policies/revisions': { allowed: users },
  'GET /api/v1/blocked-domains': { allowed: users },
  'PUT /api/v1/blocked-domains': { allowed: ['admin'] },
  'GET /api/v1/lifecycle/exemptions': { allowed: ['admin', 'auditor'] },
  'GET /api/v1/identity/role-mapping': { allowed: ['admin', 'auditor'] },
  'GET /api/v1/policies/source': { allowed: users },
  'POST /api/v1/policies/test': { allowed: users },
  'PUT /api/v1/connectors/:id': { allowed: ['admin'] },
  'GET /api/v1/connectors': { allowed: users },
  'DELETE /api/v1/connectors/:id': { allowed: ['admin'] },
  'POST /api/v1/apps/:name/builds': {
    allowed: ['creator', 'admin'],
    denied: { otherCreator: 404, reviewer: 403, auditor: 403 },
  },
  'GET /api/v1/apps/:name/builds': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/apps/:name/builds/:id': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/apps/:name/revisions': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /.well-known/oauth-protected-resource': { allowed: everyone },
  'GET /.well-known/oauth-protected-resource/mcp': { allowed: everyone },
  'GET /.well-known/oauth-authorization-server': { allowed: everyone },
  'POST /oauth/register': { allowed: everyone },
  'GET /oauth/authorize': { allowed: everyone },
  'POST /oauth/authorize': { allowed: everyone },
  'POST /oauth/token': { allowed: everyone },
  // Only an agent's access token opens the MCP endpoint: a person's own token is refused like no token.
  'POST /mcp': {
    allowed: [],
    denied: { creator: 401, otherCreator: 401, reviewer: 401, admin: 401, auditor: 401 },
  },
  'GET /mcp': { allowed: everyone },
  'DELETE /mcp': { allowed: everyone },
  'GET /api/v1/agents': { allowed: users },
  'DELETE /api/v1/agents/:id': { allowed: users },
  'GET /api/v1/agents/:id/calls': { allowed: users },
  'GET /api/v1/agents/requests': { allowed: users },
  'GET /api/v1/agents/requests/:id': { allowed: users },
  'POST /api/v1/agents/requests/:id/approve': { allowed: users },
  'POST /api/v1/agents/requests/:id/refuse': { allowed: users },
  // The git server authenticates itself (HTTP Basic with a token), and answers 401 with a challenge.
  'GET /git/:repo/info/refs': { allowed: users },
  'GET /git/*': { allowed: everyone },
  'POST /git/:repo/git-upload-pack': { allowed: users },
  'POST /git/:repo/git-receive-pack': { allowed: users },
  'GET /api/v1/apps/:name/repository': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/apps/:name/changes': {
    allowed: ['creator', 'reviewer', 'admin', 'auditor'],
    denied: { otherCreator: 404 },
  },
  'GET /api/v1/apps/:name/changes/:number': { allowed: users },
  // The owner's: an admin is refused too (admins administer, they do not write someone's code).
  'POST /api/v1/apps/:name/changes': {
    allowed: ['creator'],
    denied: { otherCreator: 404, reviewer: 403, admin: 403, auditor: 403 },
  },
  'GET /api/v1/gitops': { allowed: ['reviewer', 'admin', 'auditor'] },
  'GET /api/v1/overview': { allowed: ['admin', 'auditor'] },
  'POST /api/v1/apps/:name/changes/:number/reviews': { allowed: ['reviewer'] },
  'POST /api/v1/apps/:name/changes/:number/close': { allowed: users },
  'GET /': { allowed: everyone },
  'GET /*': { allowed: everyone },
  'GET /assets/:file': { allowed: everyone },
};

const emails: Record<Exclude<Who, 'anonymous'>, string> = {
  creator: 'alice@example.com',
  otherCreator: 'frank@example.com',
  reviewer: 'bob@example.com',
  admin: 'carol@example.com',
  auditor: 'ivan@example.com',
};

describe('every route declares who may call it', () => {
  let server: TestServer;
  let tokens: Record<Exclude<Who, 'anonymous'>, string>;
  before(async () => {
    server = await startTestServer('sqlite');
    const t = await signInEveryone(server);
    tokens = { creator: t.alice, otherCreator: t.frank, reviewer: t.bob, admin: t.carol, auditor: t.ivan };
    await call(server, 'POST', '/api/v1/apps', { token: t.alice, body: bankReconciliation() });
  });
  after(() => server.stop());

  test('the table covers every registered route, and no more', () => {
    const registered = server.app.declaredRoutes.map((r) => `${r.method} ${r.url}`).sort();
    const missing = registered.filter((r) => !(r in expectations));
    assert.deepEqual(missing, [], `routes without an entry in the access table: ${missing.join(', ')}`);
    const stale = Object.keys(expectations).filter((k) => !registered.includes(k));
    assert.deepEqual(stale, [], `table entries for routes that do not exist: ${stale.join(', ')}`);
  });

  for (const [key, rule] of Object.entries(expectations)) {
    test(key, async () => {
      const [method, template] = key.split(' ') as [string, string];
      for (const who of everyone) {
        const token = who === 'anonymous' ? undefined : tokens[who];
        const path = template
          .replace(':name', 'bank-reconciliation')
          .replace(
            ':id',
            template.includes('/builds/') ? 'bld_00000000000000000000' : 'tok_00000000000000000000',
          )
          .replace(':version', '9.9.9')
          .replace(':secret', 'LEDGER_READ_TOKEN');
        let body: unknown;
        if (method === 'POST') {
          if (path === '/api/v1/apps' || path === '/api/v1/assessments')
            body = lunchPoll({
              name: `rt-${who.toLowerCase()}`,
              owner: who === 'anonymous' ? 'x@example.com' : emails[who],
            });
          else if (path.endsWith('/reviews')) body = { decision: 'request_changes', comment: 'route table' };
          else if (path.endsWith('/promotions')) body = { version: '9.9.9' };
          else if (path === '/api/v1/tokens') body = { name: 'route-table' };
          else body = {};
        }
        const res = await call(server, method, path, { token, body });
        const where = `${key} as ${who}: ${res.status} ${res.text.slice(0, 200)}`;
        if (rule.allowed.includes(who)) {
          assert.ok(![401, 403].includes(res.status), `should pass the access gate: ${where}`);
          assert.ok(res.status < 500, where);
        } else {
          const expected = rule.denied?.[who] ?? (who === 'anonymous' ? 401 : 403);
          assert.equal(res.status, expected, where);
          assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8', where);
        }
      }
    });
  }

  test('a route without an access rule stops the server from starting', async () => {
    const app = await buildHttpApp({
      logger: pino({ level: 'silent' }),
      tokens: { authenticate: async () => null },
      login: { sessionPrincipal: async () => null },
      version: 'test',
    });
    assert.throws(() => app.get('/api/v1/forgotten', async () => 'oops'), /declares no access rule/);
    await app.close();
  });
});
