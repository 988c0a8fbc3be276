import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { anyUser, rolesOnly } from './access.ts';
import type { OffboardingService } from './offboarding-service.ts';

const Email = Type.String({ pattern: '^[^@\\s]{1,64}@[^@\\s]{1,255}$', maxLength: 320 });

/** Disabling people who left, and moving their apps to a new owner. */
export function registerOffboardingRoutes(
  fastify: FastifyInstance,
  deps: { offboarding: OffboardingService },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { offboarding } = deps;

  app.post(
    '/api/v1/users/:email/disable',
    {
      config: { access: rolesOnly(['admin']) },
      schema: {
        tags: ['identity'],
        summary:
          'Disable an account (admins): sign-in refused, sessions and tokens revoked; their apps are offered to their manager, or frozen',
        params: Type.Object({ email: Email }),
        body: Type.Object(
          { reason: Type.String({ minLength: 10, maxLength: 1000 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      offboarding.disable(
        principalOf(request),
        request.params.email,
        request.body.reason,
        auditContext(request),
      ),
  );

  app.post(
    '/api/v1/apps/:name/owner',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['catalog'],
        summary: 'Give an app a new owner: an admin, or the person it was offered to taking it over',
        params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }) }),
        body: Type.Object({ owner: Email }, { additionalProperties: false }),
      },
    },
    async (request) =>
      offboarding.transfer(
        principalOf(request),
        request.params.name,
        request.body.owner,
        auditContext(request),
      ),
  );
}
