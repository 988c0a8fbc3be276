import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { anyUser } from '../identity/access.ts';
import type { AccessRequests } from './access-requests.ts';
import { AppName } from './catalog-routes.ts';

export function registerAccessRequestRoutes(fastify: FastifyInstance, deps: { requests: AccessRequests }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/api/v1/access-requests',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['catalog'],
        summary:
          "Ask an app's owner to let you use it, with your reason. The answer (202) is the same whether the app exists or not",
        body: Type.Object(
          {
            app: AppName,
            reason: Type.String({
              minLength: 10,
              maxLength: 500,
              description: 'why you need it, for the owner to read',
            }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) =>
      reply
        .status(202)
        .send(
          await deps.requests.request(
            principalOf(request),
            request.body.app,
            request.body.reason.trim(),
            auditContext(request),
          ),
        ),
  );
}
