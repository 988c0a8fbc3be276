import { createPublicKey } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { StringEnum } from '../../api/schema-helpers.ts';
import { anyUser, publicRoute } from '../identity/access.ts';
import type { GitOps } from '../repos/gitops.ts';
import type { DeploymentService } from './deployment-service.ts';

const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' });
const Version = Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$' });
const Env = StringEnum(['live', 'preview'] as const, {
  description: 'preview: the owner and reviewers, at NAME--preview.apps…; live: the audience (default)',
});

/** Start and stop app instances; the identity key apps verify callers with. */
export function registerDeploymentRoutes(
  fastify: FastifyInstance,
  deps: { deployments: DeploymentService; gitops?: Pick<GitOps, 'publish'> },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { deployments } = deps;

  app.post(
    '/api/v1/apps/:name/deployments',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['runtime'],
        summary:
          'Run a signed version in a sandbox (owner or admin); its signature, provenance and admission are checked first',
        params: Type.Object({ name: AppName }),
        body: Type.Object({ version: Version, env: Type.Optional(Env) }, { additionalProperties: false }),
      },
    },
    async (request, reply) =>
      reply
        .status(201)
        .send(
          await deployments.deploy(
            principalOf(request),
            request.params.name,
            request.body.version,
            auditContext(request),
            request.body.env ?? 'live',
          ),
        ),
  );

  app.post(
    '/api/v1/apps/:name/kubernetes-manifests',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['runtime'],
        summary:
          'The Kubernetes driver (owner or admin): the same checks as a deploy, then a Deployment, Service, NetworkPolicy and claim for a GitOps directory that Argo CD or Flux applies',
        params: Type.Object({ name: AppName }),
        body: Type.Object({ version: Version, env: Type.Optional(Env) }, { additionalProperties: false }),
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const ctx = auditContext(request);
      const rendered = await deployments.renderForKubernetes(
        principal,
        request.params.name,
        request.body.version,
        ctx,
        request.body.env ?? 'live',
      );
      // The objects also land in the GitOps repository, as a change the deploy checks already cleared.
      const gitops = deps.gitops
        ? await deps.gitops.publish({ ...rendered, app: rendered.app }, principal, ctx)
        : null;
      return { ...rendered, gitops };
    },
  );

  app.get(
    '/api/v1/apps/:name/deployments',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['runtime'],
        summary: 'Every deployment of the app, newest first: version, environment, state, who and when',
        params: Type.Object({ name: AppName }),
      },
    },
    async (request) => ({ items: await deployments.history(principalOf(request), request.params.name) }),
  );

  app.get(
    '/api/v1/apps/:name/logs',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['runtime'],
        summary:
          "What the app's instances printed in one environment, its secrets redacted (owner or admin): the newest lines, or those after `after` to follow",
        params: Type.Object({ name: AppName }),
        querystring: Type.Object(
          {
            env: Type.Optional(Env),
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      deployments.logs(principalOf(request), request.params.name, {
        env: request.query.env ?? 'live',
        after: request.query.after ?? null,
        limit: request.query.limit ?? 500,
      }),
  );

  app.post(
    '/api/v1/apps/:name/promotions',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['runtime'],
        summary: 'Run in live a version that was tried in preview (owner or admin; the app must be approved)',
        params: Type.Object({ name: AppName }),
        body: Type.Object({ version: Version }, { additionalProperties: false }),
      },
    },
    async (request, reply) =>
      reply
        .status(201)
        .send(
          await deployments.promote(
            principalOf(request),
            request.params.name,
            request.body.version,
            auditContext(request),
          ),
        ),
  );

  app.delete(
    '/api/v1/apps/:name/deployments/current',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['runtime'],
        summary: 'Stop the running instance',
        params: Type.Object({ name: AppName }),
      },
    },
    async (request) => deployments.stop(principalOf(request), request.params.name, auditContext(request)),
  );

  app.post(
    '/api/v1/apps/:name/rollback',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['runtime'],
        summary: 'Run the version that ran before the current one (in live, or in preview)',
        params: Type.Object({ name: AppName }),
        body: Type.Optional(Type.Object({ env: Type.Optional(Env) }, { additionalProperties: false })),
      },
    },
    async (request) =>
      deployments.rollback(
        principalOf(request),
        request.params.name,
        auditContext(request),
        request.body?.env ?? 'live',
      ),
  );

  app.get(
    '/api/v1/keys/identity',
    {
      config: { access: publicRoute('public keys exist to be shared') },
      schema: { tags: ['runtime'], summary: 'The key apps verify X-Microapp-Identity with (JWKS)' },
    },
    async () => {
      const jwk = createPublicKey(await deployments.identityPublicKey()).export({ format: 'jwk' });
      return { keys: [{ ...jwk, alg: 'ES256', use: 'sig' }] };
    },
  );
}
