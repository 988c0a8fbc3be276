import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { AppError } from '../../errors.ts';
import { anyUser, rolesOnly } from '../identity/access.ts';
import type { AdvisoryService } from './advisory-service.ts';

const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' });

/** Import OSV data, scan SBOMs, and manage scan exceptions. */
export function registerAdvisoryRoutes(fastify: FastifyInstance, deps: { advisories: AdvisoryService }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { advisories } = deps;

  fastify.addContentTypeParser(
    'application/zip',
    { parseAs: 'buffer', bodyLimit: 512 * 1024 * 1024 },
    (_req, body, done) => done(null, body),
  );

  app.post(
    '/api/v1/advisories',
    {
      bodyLimit: 512 * 1024 * 1024,
      config: { access: rolesOnly(['admin'], 'policies:write') },
      schema: {
        tags: ['supply chain'],
        summary:
          "Import OSV records (application/zip: OSV's npm all.zip, or a zip of OSV JSON files), merged by id and modified date; ?replace=true makes the upload the whole data",
        querystring: Type.Object(
          { replace: Type.Optional(Type.Boolean({ description: 'the upload replaces all earlier data' })) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      if (!Buffer.isBuffer(request.body))
        throw new AppError('unsupported_media_type', 'send the OSV data as application/zip');
      const { replace } = request.query as { replace?: boolean };
      return reply.status(201).send(
        await advisories.importZip(principalOf(request), request.body, auditContext(request), {
          replace: replace ?? false,
        }),
      );
    },
  );

  app.get(
    '/api/v1/advisories',
    {
      config: { access: anyUser('apps:read') },
      schema: { tags: ['supply chain'], summary: 'The advisory snapshot scans use' },
    },
    async () => ({ snapshot: await advisories.current() }),
  );

  app.post(
    '/api/v1/scans',
    {
      bodyLimit: 16 * 1024 * 1024,
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['supply chain'],
        summary:
          'Scan a CycloneDX SBOM against the advisory snapshot; with an app, its tier sets the threshold and its exceptions apply',
        body: Type.Object(
          {
            sbom: Type.Object({}, { additionalProperties: true }),
            app: Type.Optional(AppName),
            tier: Type.Optional(Type.Unsafe<string>({ type: 'string', enum: ['low', 'medium', 'high'] })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      advisories.scanForApp(
        principalOf(request),
        request.body.sbom,
        request.body.app ?? null,
        request.body.tier ?? null,
      ),
  );

  app.post(
    '/api/v1/apps/:name/scan-exceptions',
    {
      config: { access: rolesOnly(['reviewer'], 'approvals:write') },
      schema: {
        tags: ['supply chain'],
        summary: 'Accept one vulnerability finding for an app until a date (security reviewers)',
        params: Type.Object({ name: AppName }),
        body: Type.Object(
          {
            advisory: Type.String({ minLength: 3, maxLength: 100, pattern: '^[A-Za-z0-9._:-]+$' }),
            package: Type.String({ minLength: 1, maxLength: 214 }),
            reason: Type.String({ minLength: 10, maxLength: 2000 }),
            expires: Type.String({ format: 'date' }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) =>
      reply
        .status(201)
        .send(
          await advisories.grantException(
            principalOf(request),
            request.params.name,
            request.body,
            auditContext(request),
          ),
        ),
  );
}
