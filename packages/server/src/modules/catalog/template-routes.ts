import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { anyUser } from '../identity/access.ts';

/** The vetted templates shipped with the platform (the repository's templates/ folder). */
export const defaultTemplatesDir = resolve(import.meta.dirname, '../../../../../templates');

export type TemplateInfo = { name: string; version: string; title: string; description: string };

/** The templates an app can start from, as `microapp templates list` shows them. */
export function listTemplates(dir: string): TemplateInfo[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => !d.startsWith('_') && existsSync(join(dir, d, 'template.json')))
    .sort()
    .map((d) => JSON.parse(readFileSync(join(dir, d, 'template.json'), 'utf8')) as TemplateInfo);
}

export function registerTemplateRoutes(app: FastifyInstance, deps: { dir: string }) {
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
