import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { StringEnum } from '../../api/schema-helpers.ts';
import { dataClasses } from '../catalog/manifest-schema.ts';
import { anyUser, rolesOnly } from '../identity/access.ts';
import { type ConnectorService, databasePrivileges, modelApis } from './connector-service.ts';

const ConnectorId = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', maxLength: 63 });

/** Admins define connectors; everyone may see which exist (never their credentials). */
export function registerConnectorRoutes(fastify: FastifyInstance, deps: { connectors: ConnectorService }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { connectors } = deps;

  app.put(
    '/api/v1/connectors/:id',
    {
      config: { access: rolesOnly(['admin'], 'policies:write') },
      schema: {
        tags: ['connectors'],
        summary:
          'Define or change a connector: base URL, credential (write-only; omit to keep it), allowed methods and path prefixes (HTTP) or privileges on tables (PostgreSQL), and the data classes it may receive',
        params: Type.Object({ id: ConnectorId }),
        body: Type.Object(
          {
            baseUrl: Type.String({
              format: 'uri',
              pattern: '^(https?|postgres|postgresql)://',
              maxLength: 2000,
              description:
                'https://… for a service; postgres://USER@HOST:PORT/DATABASE for a database, where USER may create roles',
            }),
            authHeader: Type.Optional(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9-]{0,63}$' })),
            modelApi: Type.Optional(
              StringEnum(modelApis, {
                description:
                  'HTTP connectors to a model API (OpenAI- or Anthropic-compatible): each call must name a model approved for the app’s data, carry none of its secrets, and its tokens are counted',
              }),
            ),
            credential: Type.Optional(Type.String({ minLength: 1, maxLength: 8192 })),
            methods: Type.Optional(
              Type.Array(StringEnum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const), {
                minItems: 1,
                maxItems: 6,
                uniqueItems: true,
                description: 'HTTP connectors: the methods apps may use',
              }),
            ),
            paths: Type.Optional(
              Type.Array(Type.String({ pattern: '^/[A-Za-z0-9._~/-]*$', maxLength: 500 }), {
                minItems: 1,
                maxItems: 50,
                description: 'HTTP connectors: the path prefixes apps may call',
              }),
            ),
            privileges: Type.Optional(
              Type.Array(StringEnum(databasePrivileges), {
                minItems: 1,
                uniqueItems: true,
                description: 'Database connectors: what each instance’s role may do on the tables',
              }),
            ),
            tables: Type.Optional(
              Type.Array(
                Type.String({ pattern: '^[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?$', maxLength: 127 }),
                {
                  minItems: 1,
                  maxItems: 100,
                  description: 'Database connectors: the tables, as schema.table',
                },
              ),
            ),
            leaseMinutes: Type.Optional(
              Type.Integer({
                minimum: 2,
                maximum: 1440,
                description:
                  'Database connectors: how long a role lives unless renewed (renewed while the instance runs); default 15',
              }),
            ),
            vaultRole: Type.Optional(
              Type.String({
                pattern: '^[A-Za-z0-9_.-]{1,128}$',
                description:
                  'Database connectors with Vault: the database secrets engine role that issues each instance’s credentials (instead of the platform creating roles)',
              }),
            ),
            vaultMount: Type.Optional(
              Type.String({
                pattern: '^[A-Za-z0-9_.-]{1,128}$',
                description: 'The database secrets engine’s mount; default database',
              }),
            ),
            dataClasses: Type.Array(StringEnum(dataClasses), { minItems: 1, uniqueItems: true }),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      connectors.put(principalOf(request), request.params.id, request.body, auditContext(request)),
  );

  app.get(
    '/api/v1/connectors',
    {
      config: { access: anyUser('apps:read') },
      schema: { tags: ['connectors'], summary: 'The connectors apps may ask for (never their credentials)' },
    },
    async () => ({ items: await connectors.list() }),
  );

  app.delete(
    '/api/v1/connectors/:id',
    {
      config: { access: rolesOnly(['admin'], 'policies:write') },
      schema: {
        tags: ['connectors'],
        summary: 'Remove a connector',
        params: Type.Object({ id: ConnectorId }),
      },
    },
    async (request, reply) => {
      await connectors.remove(principalOf(request), request.params.id, auditContext(request));
      return reply.status(204).send();
    },
  );
}
