import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { anyUser, rolesOnly } from '../identity/access.ts';
import { maxSecretBytes, type SecretService } from './secret-service.ts';

const Params = Type.Object({
  name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }),
  secret: Type.String({ pattern: '^[A-Z][A-Z0-9_]{0,63}$' }),
});

/** Set, list and delete app secrets. No route returns a value. */
export function registerSecretRoutes(fastify: FastifyInstance, deps: { secrets: SecretService }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { secrets } = deps;

  app.put(
    '/api/v1/apps/:name/secrets/:secret',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['secrets'],
        summary:
          'Set a secret the app declares (its owner or an admin); the value is encrypted and never returned',
        params: Params,
        body: Type.Object(
          { value: Type.String({ minLength: 1, maxLength: maxSecretBytes }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      secrets.set(
        principalOf(request),
        request.params.name,
        request.params.secret,
        request.body.value,
        auditContext(request),
      ),
  );

  app.get(
    '/api/v1/apps/:name/secrets',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['secrets'],
        summary: 'The secrets an app declares and whether each is set (never the values)',
        params: Type.Object({ name: Params.properties.name }),
      },
    },
    async (request) => ({ items: await secrets.list(principalOf(request), request.params.name) }),
  );

  app.delete(
    '/api/v1/apps/:name/secrets/:secret',
    {
      config: { access: anyUser('apps:write') },
      schema: { tags: ['secrets'], summary: 'Delete a secret value', params: Params },
    },
    async (request, reply) => {
      await secrets.remove(
        principalOf(request),
        request.params.name,
        request.params.secret,
        auditContext(request),
      );
      return reply.status(204).send();
    },
  );

  app.post(
    '/api/v1/secrets/rewrap',
    {
      config: { access: rolesOnly(['admin'], 'policies:write') },
      schema: {
        tags: ['secrets'],
        summary: 'After rotating the key-encryption key, re-wrap every data key under the new one',
      },
    },
    async (request) => secrets.rewrapAll(principalOf(request), auditContext(request)),
  );
}
