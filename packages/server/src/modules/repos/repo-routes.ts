import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { FormFields } from '../builds/form-fields.ts';
import { anyUser, rolesOnly } from '../identity/access.ts';
import type { BuilderChanges } from './builder-change.ts';
import type { ChangeService } from './change-service.ts';
import type { GitOps } from './gitops.ts';
import type { RepoService } from './repo-service.ts';

const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', maxLength: 63 });
const ChangeNumber = Type.Integer({ minimum: 1, maximum: 1_000_000 });

/** An app's repository and its change requests. */
export function registerRepoRoutes(
  fastify: FastifyInstance,
  deps: { repos: RepoService; changes: ChangeService; gitops: GitOps; builder: BuilderChanges },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { repos, changes, gitops, builder } = deps;

  app.post(
    '/api/v1/apps/:name/changes',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['repositories'],
        summary:
          "The console's Deploy (owner): commit the builder's answers, the registered manifest and the next version to a new branch, which opens a change request the tier's rule ships",
        params: Type.Object({ name: AppName }),
        body: Type.Object({ fields: Type.Optional(FormFields) }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      const change = await builder.open(
        principalOf(request),
        request.params.name,
        request.body.fields ? { fields: request.body.fields } : {},
        auditContext(request),
      );
      return reply
        .status(201)
        .header('location', `/api/v1/apps/${change.app}/changes/${change.number}`)
        .send(change);
    },
  );

  app.get(
    '/api/v1/gitops',
    {
      config: { access: rolesOnly(['admin', 'auditor', 'reviewer'], 'apps:read') },
      schema: {
        tags: ['repositories'],
        summary:
          'The GitOps repository Argo CD or Flux follows: its clone URL, main’s recent commits, and the deploys committed to it',
      },
    },
    async (request) => gitops.view(principalOf(request)),
  );

  app.get(
    '/api/v1/apps/:name/repository',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['repositories'],
        summary:
          "The app's repository: its clone URL (an API token is the password) and main's recent commits",
        params: Type.Object({ name: AppName }),
      },
    },
    async (request) => repos.view(principalOf(request), request.params.name, auditContext(request)),
  );

  app.get(
    '/api/v1/apps/:name/changes',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['repositories'],
        summary: "The app's change requests, newest first, with their checks and reviews",
        params: Type.Object({ name: AppName }),
        querystring: Type.Object(
          {
            state: Type.Optional(
              Type.Union([Type.Literal('open'), Type.Literal('merged'), Type.Literal('closed')]),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({
      items: await changes.list(principalOf(request), request.params.name, {
        ...(request.query.state ? { state: request.query.state } : {}),
      }),
    }),
  );

  app.get(
    '/api/v1/apps/:name/changes/:number',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['repositories'],
        summary: 'One change request: checks, reviews, commits, the code diff and the manifest diff',
        params: Type.Object({ name: AppName, number: ChangeNumber }),
      },
    },
    async (request) => changes.get(principalOf(request), request.params.name, request.params.number),
  );

  app.post(
    '/api/v1/apps/:name/changes/:number/reviews',
    {
      config: { access: rolesOnly(['reviewer'], 'approvals:write') },
      schema: {
        tags: ['repositories'],
        summary:
          'Approve a change request or ask for changes, on the head commit you read; the approval that completes the rule merges it',
        params: Type.Object({ name: AppName, number: ChangeNumber }),
        body: Type.Object(
          {
            decision: Type.Union([Type.Literal('approved'), Type.Literal('changes_requested')]),
            comment: Type.Optional(Type.String({ minLength: 1, maxLength: 4000 })),
            head: Type.Optional(
              Type.String({ pattern: '^[0-9a-f]{40}$', description: 'the head commit you reviewed' }),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) =>
      changes.review(
        principalOf(request),
        request.params.name,
        request.params.number,
        {
          decision: request.body.decision,
          ...(request.body.comment ? { comment: request.body.comment } : {}),
          ...(request.body.head ? { head: request.body.head } : {}),
        },
        auditContext(request),
      ),
  );

  app.post(
    '/api/v1/apps/:name/changes/:number/close',
    {
      config: { access: anyUser('apps:write') },
      schema: {
        tags: ['repositories'],
        summary: 'Close a change request without merging it (who opened it, the owner or an admin)',
        params: Type.Object({ name: AppName, number: ChangeNumber }),
      },
    },
    async (request) =>
      changes.close(principalOf(request), request.params.name, request.params.number, auditContext(request)),
  );
}
