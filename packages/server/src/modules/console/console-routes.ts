import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { publicRoute } from '../identity/access.ts';

/** Where `npm run build -w packages/console` writes the console, seen from this file. */
export const defaultConsoleDir = resolve(
  fileURLToPath(new URL('.', import.meta.url)),
  '../../../../console/dist',
);

const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>microapp</title></head>
<body><main><h1>The web console is not built</h1>
<p>The API and the CLI work without it. To serve the console, build it once and restart the server:</p>
<pre>npm run build:console</pre></main></body></html>`;

/** Paths that belong to the API or to sign-in: an unknown one is a 404, never the console's page. */
const serverPath = /^\/(api|auth|metrics|healthz|readyz|oauth|mcp|\.well-known)(\/|$)/;

/**
 * The web console: static files built by Vite, served from the same origin as the API so that the
 * session cookie and the CSRF token work and the content security policy can stay `default-src 'self'`.
 * Every other GET path that is not the server's answers with the console's page, whose router shows it.
 */
export async function registerConsoleRoutes(fastify: FastifyInstance, deps: { dir: string }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const built = existsSync(join(deps.dir, 'index.html'));
  await fastify.register(fastifyStatic, { root: deps.dir, serve: false });

  app.get(
    '/assets/:file',
    {
      config: { access: publicRoute("the console's scripts and styles hold no data") },
      schema: {
        hide: true,
        params: Type.Object({ file: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,200}$' }) }),
      },
    },
    async (request, reply) => {
      if (!built || request.params.file.startsWith('.')) throw new AppError('not_found', 'no such file');
      // File names carry their content's hash: they never change, so browsers may keep them.
      return reply.sendFile(`assets/${request.params.file}`, { maxAge: '365d', immutable: true });
    },
  );

  // The page itself is never cached (the server's default no-store), so a new build is seen at once.
  const page = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '/';
    if (serverPath.test(path)) throw new AppError('not_found', `nothing is served at ${path}`);
    reply.type('text/html; charset=utf-8');
    return built ? reply.sendFile('index.html', { cacheControl: false }) : reply.send(notBuilt);
  };
  const access = publicRoute("the console's page holds no data; it signs in through /auth/login");
  app.get('/', { config: { access }, schema: { hide: true } }, page);
  app.get('/*', { config: { access }, schema: { hide: true } }, page);
}
