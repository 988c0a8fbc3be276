import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { StringEnum } from '../../api/schema-helpers.ts';
import type { ReadCache } from '../../db/read-cache.ts';
import { AppError } from '../../errors.ts';
import { anyUser, publicRoute, rolesOnly } from '../identity/access.ts';
import { tiers } from '../risk/risk-rules.ts';
import { appStates } from './app-view.ts';
import { catalogStages } from './catalog-lifecycle.ts';
import { denialSentence } from './catalog-policy.ts';
import { type CatalogService, pageJson } from './catalog-service.ts';
import { dataClasses, Manifest } from './manifest-schema.ts';

export const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', maxLength: 63 });

/** Register, list and show apps, and publish the manifest's JSON Schema. */
export function registerCatalogRoutes(
  fastify: FastifyInstance,
  /** `cache`: the catalog's pages and views are kept until the apps change (db/read-cache.ts). */
  deps: { catalog: CatalogService; cache?: ReadCache },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { catalog } = deps;

  app.post(
    '/api/v1/apps',
    {
      config: { access: rolesOnly(['creator', 'admin'], 'apps:write') },
      schema: {
        tags: ['catalog'],
        summary: 'Register an app, or re-register it with a changed manifest (JSON or YAML body)',
        body: Manifest,
      },
    },
    async (request, reply) => {
      const outcome = await catalog.register(principalOf(request), request.body, auditContext(request));
      if (outcome.kind === 'denied')
        throw new AppError(
          'policy_denied',
          `policy revision ${outcome.revision} denied the registration: ${denialSentence(outcome.denials)}. Change the manifest (remove the host or connector named), or ask a platform admin about the rule.`,
          outcome.denials.map((d) => ({ path: d.entrypoint, message: d.message })),
        );
      const status = outcome.kind === 'created' ? 201 : 200;
      return reply.status(status).send({
        outcome: outcome.kind,
        reReview: outcome.kind === 'updated' && outcome.reReview,
        app: outcome.app,
      });
    },
  );

  app.get(
    '/api/v1/apps',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['catalog'],
        summary: 'List and search the catalog, a page at a time',
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            owner: Type.Optional(Type.String({ maxLength: 254 })),
            department: Type.Optional(Type.String({ maxLength: 63 })),
            tier: Type.Optional(StringEnum(tiers)),
            state: Type.Optional(StringEnum(appStates)),
            dataClass: Type.Optional(StringEnum(dataClasses)),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
            scorecard: Type.Optional(
              StringEnum(['passing', 'failing'] as const, {
                description: 'only apps whose governance scorecard passes every check, or fails one',
              }),
            ),
            stage: Type.Optional(
              StringEnum(catalogStages, { description: 'lifecycle stage (an app never warned is active)' }),
            ),
            running: Type.Optional(
              StringEnum(['yes', 'no'] as const, {
                description: 'whether a live instance runs (or is idle, starting at its next request)',
              }),
            ),
            idleDays: Type.Optional(
              Type.Integer({ minimum: 1, maximum: 3650, description: 'nobody used it for this many days' }),
            ),
            expiringDays: Type.Optional(
              Type.Integer({
                minimum: 0,
                maximum: 3650,
                description: 'it stops within this many days unless renewed',
              }),
            ),
            view: Type.Optional(
              StringEnum(['full', 'summary'] as const, {
                description:
                  'full (the default): each app as GET /api/v1/apps/{name} returns it; summary: what a catalog row shows (name, owner, department, state, tier, revision, purpose, data classes, scorecard, lifecycle stage, running, last use, expiry)',
              }),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    // The caller's sign-in (auth-hook.ts) already began the request's read of the cache.
    async (request, reply) => {
      const page = await catalog.list(
        principalOf(request),
        { ...request.query, limit: request.query.limit ?? 50 },
        deps.cache ? { cache: deps.cache } : {},
      );
      return reply.type('application/json; charset=utf-8').send(pageJson(page));
    },
  );

  app.get(
    '/api/v1/apps/:name',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['catalog'],
        summary: 'One app with its risk assessment and approval status',
        params: Type.Object({ name: AppName }),
      },
    },
    async (request) => catalog.get(principalOf(request), request.params.name),
  );

  app.post(
    '/api/v1/assessments',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['catalog'],
        summary:
          'Score a manifest without registering it: its risk tier, the reasons and the reviews it would need',
        body: Manifest,
      },
    },
    async (request) => catalog.assess(principalOf(request), request.body),
  );

  app.get(
    '/api/v1/apps/:name/revisions',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['catalog'],
        summary: "Every registration of an app, newest first: the risk inputs and the reviewers' decisions",
        params: Type.Object({ name: AppName }),
      },
    },
    async (request) => ({ items: await catalog.revisions(principalOf(request), request.params.name) }),
  );

  app.get(
    '/api/v1/schemas/manifest.json',
    {
      config: { access: publicRoute('the manifest schema holds no data; editors fetch it') },
      schema: { tags: ['catalog'], summary: 'JSON Schema of microapp.yaml' },
    },
    async (_request, reply) =>
      reply
        .type('application/schema+json')
        .send({ $schema: 'http://json-schema.org/draft-07/schema#', ...Manifest }),
  );
}
