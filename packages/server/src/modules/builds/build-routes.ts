import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { AppError } from '../../errors.ts';
import { anyUser } from '../identity/access.ts';
import type { BuildService } from './build-service.ts';
import { uploadLimits } from './build-source.ts';
import { FormFields } from './form-fields.ts';

const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', maxLength: 63 });
const BuildId = Type.String({ pattern: '^bld_[0-9a-z]{20}$' });

/** Builds on the platform: start one, watch it step by step, list an app's builds. */
export function registerBuildRoutes(fastify: FastifyInstance, deps: { builds: BuildService }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { builds } = deps;

  app.post(
    '/api/v1/apps/:name/builds',
    {
      bodyLimit: Math.ceil((uploadLimits.bytes * 4) / 3) + 64 * 1024,
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['supply chain'],
        summary:
          'Build an app on the platform (its template, or an uploaded source archive) through the same pipeline as `microapp ci`, and deploy it when asked',
        params: Type.Object({ name: AppName }),
        body: Type.Object(
          {
            source: Type.Optional(
              Type.String({
                minLength: 1,
                contentEncoding: 'base64',
                description:
                  'the app folder as a tar.gz, base64; without it the app is built from its template',
              }),
            ),
            fields: Type.Optional(FormFields),
            deploy: Type.Optional(Type.Boolean({ description: 'deploy the version once the build passes' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { source, fields, deploy = false } = request.body;
      if (source && fields)
        throw new AppError(
          'bad_request',
          'send either a source archive or form fields: fields are for template builds',
        );
      let input: Parameters<BuildService['request']>[2];
      if (source) {
        const archive = Buffer.from(source, 'base64');
        if (archive.length > uploadLimits.bytes)
          throw new AppError(
            'bad_request',
            `the source archive is over ${uploadLimits.bytes / 1024 / 1024} MB`,
          );
        if (archive[0] !== 0x1f || archive[1] !== 0x8b)
          throw new AppError('bad_request', 'the source must be a gzip-compressed tar archive (.tar.gz)');
        input = { kind: 'upload', archive, deploy };
      } else input = { kind: 'template', ...(fields ? { fields } : {}), deploy };
      const build = await builds.request(
        principalOf(request),
        request.params.name,
        input,
        auditContext(request),
      );
      return reply.status(202).header('location', `/api/v1/apps/${build.app}/builds/${build.id}`).send(build);
    },
  );

  app.get(
    '/api/v1/apps/:name/builds',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['supply chain'],
        summary: "An app's builds, newest first",
        params: Type.Object({ name: AppName }),
      },
    },
    async (request) => ({ items: await builds.list(principalOf(request), request.params.name) }),
  );

  app.get(
    '/api/v1/apps/:name/builds/:id',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['supply chain'],
        summary: 'One build: its state and every pipeline step finished so far, with durations',
        params: Type.Object({ name: AppName, id: BuildId }),
      },
    },
    async (request) => builds.get(principalOf(request), request.params.name, request.params.id),
  );
}
