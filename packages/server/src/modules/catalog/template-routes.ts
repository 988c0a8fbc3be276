import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { anyUser } from '../identity/access.ts';
import { listTemplates } from './templates.ts';

export function registerTemplateRoutes(fastify: FastifyInstance, deps: { dir: string }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const templates = listTemplates(deps.dir);
  app.get(
    '/api/v1/templates',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['catalog'],
        summary: 'The vetted templates an app can start from, with their versions',
      },
    },
    async () => ({ items: templates }),
  );
}
