import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../api/auth-hook.ts';
import { anyUser, rolesOnly } from '../identity/access.ts';
import type { UsageService } from './usage-service.ts';

const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' });

/** How much an app is used (for its owner, reviewers and dashboards), and Prometheus metrics. */
export function registerUsageRoutes(fastify: FastifyInstance, deps: { usage: UsageService }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { usage } = deps;

  app.get(
    '/api/v1/apps/:name/usage',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['runtime'],
        summary:
          'Requests, users, errors and bytes through the gateway over the last `days` days, and when the app was last used',
        params: Type.Object({ name: AppName }),
        querystring: Type.Object(
          { days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, default: 30 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => usage.summary(principalOf(request), request.params.name, request.query.days ?? 30),
  );

  app.get(
    '/metrics',
    {
      // App names and traffic are internal information: scrape with an admin's or auditor's API token.
      config: { access: rolesOnly(['admin', 'auditor']) },
      schema: { hide: true },
    },
    async (_request, reply) => {
      const { body, contentType } = await usage.metrics();
      return reply.type(contentType).send(body);
    },
  );
}
