import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { StringEnum } from '../../api/schema-helpers.ts';
import { AppError } from '../../errors.ts';
import { anyUser } from '../identity/access.ts';
import { scopes } from '../identity/principal.ts';
import { maxTokenDays, type TokenService } from './token-service.ts';

/** Create, list and revoke API tokens. */
export function registerTokenRoutes(fastify: FastifyInstance, deps: { tokens: TokenService }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { tokens } = deps;

  app.post(
    '/api/v1/tokens',
    {
      config: { access: anyUser('tokens:write') },
      schema: {
        tags: ['tokens'],
        summary: 'Create an API token; its value is shown in this response only',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            scopes: Type.Optional(Type.Array(StringEnum(scopes), { minItems: 1, uniqueItems: true })),
            expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: maxTokenDays })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const wanted = request.body.scopes ?? p.scopes;
      const extra = wanted.filter((s) => !p.scopes.includes(s));
      if (extra.length > 0)
        throw new AppError('forbidden', `a token cannot grant scopes its creator lacks: ${extra.join(', ')}`);
      const issued = await tokens.create(
        p.userId,
        { ...request.body, scopes: wanted },
        auditContext(request),
      );
      return reply.status(201).send({ token: issued.token, ...issued.info });
    },
  );

  app.get(
    '/api/v1/tokens',
    {
      config: { access: anyUser() },
      schema: {
        tags: ['tokens'],
        summary: "List your API tokens (admins: ?all=true for everyone's); values are never returned",
        querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      },
    },
    async (request) => ({ items: await tokens.list(principalOf(request), request.query.all ?? false) }),
  );

  app.delete(
    '/api/v1/tokens/:id',
    {
      config: { access: anyUser('tokens:write') },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke an API token',
        params: Type.Object({ id: Type.String({ pattern: '^tok_[a-z0-9]{20}$' }) }),
      },
    },
    async (request) => tokens.revoke(principalOf(request), request.params.id, auditContext(request)),
  );
}
