import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../api/auth-hook.ts';
import { rolesOnly } from '../identity/access.ts';
import type { OverviewService } from './overview.ts';

/** GET /api/v1/overview, for admins and auditors. */
export function registerOverviewRoute(fastify: FastifyInstance, deps: { overview: OverviewService }) {
  fastify.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/v1/overview',
    {
      config: { access: rolesOnly(['admin', 'auditor'], 'apps:read') },
      schema: {
        tags: ['lifecycle'],
        summary:
          'The platform at a glance (admins, auditors): apps by tier, state, lifecycle stage and running state, registrations by week, reviews waiting, apps expiring or idle, failing builds, the most used apps',
      },
    },
    async (request) => {
      principalOf(request);
      return deps.overview.overview();
    },
  );
}
