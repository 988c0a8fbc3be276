import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { AppError } from '../../errors.ts';
import { anyUser, rolesOnly } from '../identity/access.ts';
import type { AdvisoryService } from './advisory-service.ts';

const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' });

/** Import OSV data, scan SBOMs, and manage scan exceptions. */
/** An advisory id as OSV writes them (GHSA-…, CVE-…, and other databases' ids). */
const AdvisoryId = Type.String({ minLength: 3, maxLength: 100, pattern: '^[A-Za-z0-9._:-]+$' });

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
        summary:
          "Accept findings of an app until a date (security reviewers): one or several advisories, for one package or '*' for all; each must be in the advisory data",
        params: Type.Object({ name: AppName }),
        body: Type.Object(
          {
            advisory: Type.Optional(AdvisoryId),
            advisories: Type.Optional(Type.Array(AdvisoryId, { minItems: 1, maxItems: 50 })),
            package: Type.String({
              minLength: 1,
              maxLength: 214,
              pattern: '^(\\*|(@[a-z0-9._~-]+/)?[a-z0-9._~-]+)$',
            }),
            reason: Type.String({ minLength: 10, maxLength: 2000 }),
            expires: Type.String({ format: 'date' }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { advisory, advisories: many, ...rest } = request.body;
      const ids = [...(advisory ? [advisory] : []), ...(many ?? [])];
      if (ids.length === 0)
        throw new AppError(
          'validation_failed',
          'name the advisory (advisory) or advisories (advisories) to accept',
        );
      const granted = await advisories.grantException(
        principalOf(request),
        request.params.name,
        { ...rest, advisories: ids },
        auditContext(request),
      );
      // One advisory: the exception itself, as before; several: all of them.
      return reply.status(201).send(many ? { items: granted } : granted[0]);
    },
  );

  app.get(
    '/api/v1/apps/:name/scan-exceptions',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['supply chain'],
        summary: "An app's scan exceptions, newest first: live, expired and revoked",
        params: Type.Object({ name: AppName }),
      },
    },
    async (request) => ({
      items: await advisories.listExceptions(principalOf(request), request.params.name),
    }),
  );

  app.delete(
    '/api/v1/apps/:name/scan-exceptions/:id',
    {
      config: { access: rolesOnly(['reviewer', 'admin'], 'approvals:write') },
      schema: {
        tags: ['supply chain'],
        summary: 'Revoke a scan exception now (security reviewers and admins); the finding blocks again',
        params: Type.Object({
          name: AppName,
          id: Type.String({ pattern: '^exc_[A-Za-z0-9]+$', maxLength: 64 }),
        }),
      },
    },
    async (request) =>
      advisories.revokeException(
        principalOf(request),
        request.params.name,
        request.params.id,
        auditContext(request),
      ),
  );
}
