import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { perCallerLimit } from '../../api/rate-limit.ts';
import { AppError } from '../../errors.ts';
import { anyUser, rolesOnly } from '../identity/access.ts';
import type { PolicyService } from './policy-service.ts';

const Entrypoint = Type.String({
  pattern: '^(data\\.)?[A-Za-z_][A-Za-z0-9_]*([./][A-Za-z_][A-Za-z0-9_]*)*$',
  maxLength: 300,
});

/** Push and inspect organization policies, evaluate decisions, and check deploy admission. */
export function registerPolicyRoutes(fastify: FastifyInstance, deps: { policies: PolicyService }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { policies } = deps;
  // Evaluations, test runs and pushes cost CPU the caller chooses: a burst, then two a second, per person.
  const limit = perCallerLimit({ burst: 20, perSecond: 2 });

  app.post(
    '/api/v1/policies',
    {
      config: { access: rolesOnly(['admin'], 'policies:write') },
      schema: {
        tags: ['policy'],
        summary: 'Push an organization policy bundle; refused unless it compiles and every test_ rule passes',
        body: Type.Object(
          {
            modules: Type.Record(Type.String({ maxLength: 200 }), Type.String({ maxLength: 256 * 1024 }), {
              maxProperties: 200,
              description:
                'the organization’s own .rego files by path; may be empty when the bundle only sets data (e.g. DLP modes)',
            }),
            data: Type.Optional(Type.Object({}, { additionalProperties: true })),
            message: Type.Optional(Type.String({ maxLength: 1000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      limit(principalOf(request).userId, 'policy runs');
      const outcome = await policies.push(principalOf(request), request.body, auditContext(request));
      if (outcome.kind === 'invalid')
        throw new AppError(
          'policy_invalid',
          `the bundle was refused: ${outcome.problems.map((p) => p.message.split('\n')[0]).join('; ')}`,
          outcome.problems.map((p) => ({ path: p.file, message: p.message })),
        );
      return reply.status(201).send(outcome);
    },
  );

  app.get(
    '/api/v1/policies',
    {
      config: { access: anyUser('apps:read') },
      schema: { tags: ['policy'], summary: 'The active policy revision and its modules' },
    },
    async () => policies.current(),
  );

  app.get(
    '/api/v1/blocked-domains',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['policy'],
        summary:
          'The domains the organization blocked (and every name under each): no deploy, no outbound request',
      },
    },
    async () => policies.blockedDomains(),
  );

  app.put(
    '/api/v1/blocked-domains',
    {
      config: { access: rolesOnly(['admin'], 'policies:write') },
      schema: {
        tags: ['policy'],
        summary:
          'Replace the blocked domains (admins): a new organization policy revision, checked and audited like a push',
        body: Type.Object(
          {
            domains: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 1000 }),
            message: Type.String({
              minLength: 3,
              maxLength: 1000,
              description: 'why: kept in the revision and the audit trail',
            }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      policies.setBlockedDomains(
        principalOf(request),
        request.body.domains,
        request.body.message,
        auditContext(request),
      ),
  );

  app.get(
    '/api/v1/policies/revisions',
    {
      config: { access: anyUser('apps:read') },
      schema: { tags: ['policy'], summary: 'Every organization bundle pushed, newest first' },
    },
    async () => ({ items: await policies.revisions() }),
  );

  app.get(
    '/api/v1/policies/source',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['policy'],
        summary: 'One Rego module of the active policy (a built-in pack, or org/FILE)',
        querystring: Type.Object(
          { file: Type.String({ pattern: '^(?!.*\\.\\.)[A-Za-z0-9_][A-Za-z0-9_./-]{0,210}\\.rego$' }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => policies.source(request.query.file),
  );

  app.post(
    '/api/v1/policies/test',
    {
      config: { access: anyUser('apps:read') },
      schema: { tags: ['policy'], summary: 'Run every test_ rule of the active policy; nothing is changed' },
    },
    async (request) => {
      limit(principalOf(request).userId, 'policy runs');
      return policies.test();
    },
  );

  app.post(
    '/api/v1/policies/evaluate',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['policy'],
        summary: 'Evaluate one entrypoint (e.g. microapp/deploy/deny) with an input; the decision is logged',
        body: Type.Object(
          { entrypoint: Entrypoint, input: Type.Optional(Type.Unknown()) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      limit(principalOf(request).userId, 'policy runs');
      return policies.evaluate(request.body.entrypoint, request.body.input, auditContext(request));
    },
  );

  app.get(
    '/api/v1/policies/decisions',
    {
      // Reviewers read the policy results for the apps they decide on.
      config: { access: rolesOnly(['admin', 'auditor', 'reviewer'], 'audit:read') },
      schema: {
        tags: ['policy'],
        summary: 'The decision log: entrypoint, policy revision, input digest, result and duration',
        querystring: Type.Object(
          {
            subject: Type.Optional(Type.String({ maxLength: 63 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({
      items: await policies.decisions({ subject: request.query.subject, limit: request.query.limit ?? 100 }),
    }),
  );

  app.get(
    '/api/v1/apps/:name/access',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['policy'],
        summary:
          'May this user use the app? Decided by the microapp.access policy (admins and reviewers may ask for another user)',
        params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }) }),
        querystring: Type.Object(
          { user: Type.Optional(Type.String({ format: 'email', maxLength: 254 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      policies.access(principalOf(request), request.params.name, request.query.user, auditContext(request)),
  );

  app.post(
    '/api/v1/apps/:name/admission',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['policy'],
        summary:
          'Would a deploy of this app be admitted? Checks every deny rule for each egress host (or the host given)',
        params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }) }),
        body: Type.Object(
          { host: Type.Optional(Type.String({ pattern: '^[a-z0-9.-]{1,253}$' })) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      policies.admission(principalOf(request), request.params.name, request.body.host, auditContext(request)),
  );
}
