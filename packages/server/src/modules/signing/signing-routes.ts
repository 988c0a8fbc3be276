import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { anyUser, publicRoute, rolesOnly } from '../identity/access.ts';
import type { KeyRotation } from './key-rotation.ts';
import type { KeyStore } from './key-store.ts';
import type { VersionsService } from './versions-service.ts';

const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' });
const Version = Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$', maxLength: 64 });

/** Public keys, publishing signed versions, and reading them back. */
export function registerSigningRoutes(
  fastify: FastifyInstance,
  deps: { keys: KeyStore; versions: VersionsService; rotation: KeyRotation },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { keys, versions } = deps;

  app.post(
    '/api/v1/keys/rotate',
    {
      config: { access: rolesOnly(['admin']) },
      schema: {
        tags: ['supply chain'],
        summary:
          'Retire the signing key and make a new one (admins); artifacts signed before still verify with the retired key',
        body: Type.Object(
          { reason: Type.String({ minLength: 10, maxLength: 1000 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => deps.rotation.rotate(principalOf(request), request.body.reason, auditContext(request)),
  );

  app.get(
    '/api/v1/keys',
    {
      config: { access: publicRoute('public keys exist to be shared') },
      schema: { tags: ['supply chain'], summary: 'The signing public keys, current and retired' },
    },
    async () => ({ items: await keys.publicKeys() }),
  );

  app.get(
    '/api/v1/keys/signing.pub',
    {
      config: { access: publicRoute('public keys exist to be shared') },
      schema: {
        tags: ['supply chain'],
        summary: 'The current signing public key (PEM), for cosign and openssl',
      },
    },
    async (_request, reply) => reply.type('application/x-pem-file').send((await keys.current()).publicPem),
  );

  app.post(
    '/api/v1/apps/:name/versions',
    {
      bodyLimit: 64 * 1024 * 1024,
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['supply chain'],
        summary:
          'Publish a version: the platform re-scans the SBOM, signs the artifact and its attestations, and stores them immutably',
        params: Type.Object({ name: AppName }),
        body: Type.Object(
          {
            version: Version,
            artifact: Type.String({ minLength: 1, contentEncoding: 'base64' }),
            sbom: Type.Object({}, { additionalProperties: true }),
            sourceDigest: Type.Optional(Type.String({ pattern: '^sha256:[0-9a-f]{64}$' })),
            lockfileDigest: Type.Optional(Type.String({ pattern: '^sha256:[0-9a-f]{64}$' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) =>
      reply
        .status(201)
        .send(
          await versions.publish(
            principalOf(request),
            request.params.name,
            request.body,
            auditContext(request),
          ),
        ),
  );

  app.get(
    '/api/v1/apps/:name/versions',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['supply chain'],
        summary: 'Published versions with their scan results',
        params: Type.Object({ name: AppName }),
      },
    },
    async (request) => ({ items: await versions.list(principalOf(request), request.params.name) }),
  );

  app.get(
    '/api/v1/apps/:name/versions/:version',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['supply chain'],
        summary: 'One version: digest, SBOM, scan, provenance and Sigstore bundles',
        params: Type.Object({ name: AppName, version: Version }),
      },
    },
    async (request) => versions.get(principalOf(request), request.params.name, request.params.version),
  );

  app.get(
    '/api/v1/apps/:name/versions/:version/verification',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['supply chain'],
        summary:
          'Check a stored version as a third party would: the artifact signature and every attestation, with the key its bundles name',
        params: Type.Object({ name: AppName, version: Version }),
      },
    },
    async (request) =>
      versions.verification(principalOf(request), request.params.name, request.params.version),
  );

  app.get(
    '/api/v1/apps/:name/versions/:version/artifact',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['supply chain'],
        summary: 'The artifact (tar.gz), checked against its digest before it is served',
        params: Type.Object({ name: AppName, version: Version }),
      },
    },
    async (request, reply) =>
      reply
        .type('application/gzip')
        .send(await versions.artifact(principalOf(request), request.params.name, request.params.version)),
  );
}
