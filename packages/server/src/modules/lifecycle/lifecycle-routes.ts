import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { anyUser, rolesOnly } from '../identity/access.ts';
import type { Graduation } from './graduation.ts';
import type { LifecycleService } from './lifecycle-service.ts';

const Params = Type.Object({ name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }) });
const Reason = (what: string) =>
  Type.String({ minLength: 10, maxLength: 1000, description: `${what} (at least 10 characters)` });

/** Expiry, renewal, inactivity exemptions, decommissioning and restore. */
export function registerLifecycleRoutes(
  fastify: FastifyInstance,
  deps: { lifecycle: LifecycleService; graduation: Graduation },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { lifecycle, graduation } = deps;

  app.get(
    '/api/v1/lifecycle/exemptions',
    {
      config: { access: rolesOnly(['admin', 'auditor'], 'apps:read') },
      schema: {
        tags: ['lifecycle'],
        summary:
          'Every app exempted from inactivity checks, with the reason and who exempted it (admins, auditors)',
      },
    },
    async (request) => ({ items: await lifecycle.exemptions(principalOf(request)) }),
  );

  app.post(
    '/api/v1/apps/:name/graduation',
    {
      config: { access: rolesOnly(['admin'], 'apps:write') },
      schema: {
        tags: ['lifecycle'],
        summary:
          'Hand an app to an engineering team (admins): ownership to the team’s lead, inactivity and expiry lifted',
        params: Params,
        body: Type.Object(
          {
            team: Type.String({
              pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
              description: 'the team, e.g. payments-eng',
            }),
            owner: Type.String({
              pattern: '^[^@\\s]{1,64}@[^@\\s]{1,255}$',
              description: 'the team lead who owns it now',
            }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      graduation.graduate(
        principalOf(request),
        request.params.name,
        request.body.team,
        request.body.owner,
        auditContext(request),
      ),
  );

  app.get(
    '/api/v1/apps/:name/export',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['lifecycle'],
        summary:
          'The export bundle (tar.gz: source, SBOM, attestations, manifest, data classification, access rules, audit excerpt, hardening checklist); owner, admins, auditors',
        params: Params,
      },
    },
    async (request, reply) => {
      const bundle = await graduation.exportBundle(
        principalOf(request),
        request.params.name,
        auditContext(request),
      );
      return reply
        .type('application/gzip')
        .header('content-disposition', `attachment; filename="${request.params.name}-export.tar.gz"`)
        .send(bundle);
    },
  );

  app.get(
    '/api/v1/apps/:name/lifecycle',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['lifecycle'],
        summary: 'Where the app stands: stage, last use, expiry, the next scheduled step, exemption, archive',
        params: Params,
      },
    },
    async (request) => lifecycle.view(principalOf(request), request.params.name),
  );

  app.post(
    '/api/v1/apps/:name/renewal',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['lifecycle'],
        summary:
          'Renew an app (owner or admin): re-confirms its purpose, re-scans it against today’s advisories, and answers an inactivity warning or stop; high tier waits for a reviewer',
        params: Params,
        body: Type.Object(
          { purpose: Reason('why the app is still needed') },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      lifecycle.renew(principalOf(request), request.params.name, request.body.purpose, auditContext(request)),
  );

  app.post(
    '/api/v1/apps/:name/renewal/approve',
    {
      config: { access: rolesOnly(['reviewer'], 'approvals:write') },
      schema: {
        tags: ['lifecycle'],
        summary: 'Approve a high-tier app’s renewal (a reviewer other than its owner)',
        params: Params,
      },
    },
    async (request) =>
      lifecycle.approveRenewal(principalOf(request), request.params.name, auditContext(request)),
  );

  app.put(
    '/api/v1/apps/:name/exemption',
    {
      config: { access: rolesOnly(['admin'], 'apps:write') },
      schema: {
        tags: ['lifecycle'],
        summary: 'Exempt an app from inactivity checks, with a reason (admins); expiry still applies',
        params: Params,
        body: Type.Object({ reason: Reason('why the app is exempt') }, { additionalProperties: false }),
      },
    },
    async (request) =>
      lifecycle.setExemption(
        principalOf(request),
        request.params.name,
        request.body.reason,
        auditContext(request),
      ),
  );

  app.delete(
    '/api/v1/apps/:name/exemption',
    {
      config: { access: rolesOnly(['admin'], 'apps:write') },
      schema: { tags: ['lifecycle'], summary: 'Remove an inactivity exemption (admins)', params: Params },
    },
    async (request) =>
      lifecycle.setExemption(principalOf(request), request.params.name, null, auditContext(request)),
  );

  app.post(
    '/api/v1/apps/:name/decommission',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['lifecycle'],
        summary:
          'Retire an app now (owner or admin): stop it, archive its data encrypted, delete its secrets; the record and audit trail stay',
        params: Params,
        body: Type.Object({ reason: Reason('why the app is retired') }, { additionalProperties: false }),
      },
    },
    async (request) =>
      lifecycle.decommissionNow(
        principalOf(request),
        request.params.name,
        request.body.reason,
        auditContext(request),
      ),
  );

  app.post(
    '/api/v1/apps/:name/restore',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['lifecycle'],
        summary: 'Bring a decommissioned app back with its data (owner or admin), while its archive is kept',
        params: Params,
      },
    },
    async (request) => lifecycle.restore(principalOf(request), request.params.name, auditContext(request)),
  );
}
