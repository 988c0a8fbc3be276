import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { anyUser } from '../identity/access.ts';
import type { CheckpointService } from './checkpoint-service.ts';
import type { DelegationService } from './delegation-service.ts';

const DelegationId = Type.String({ pattern: '^dlg_[0-9a-z]{20}$' });
const CheckpointId = Type.String({ pattern: '^chk_[0-9a-z]{20}$' });
const Answer = Type.Object(
  { note: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);

/**
 * The person's side of agents: their delegations (listed, revoked), the requests their agents wait on
 * (approved or refused), and what each agent did. An agent's own token never reaches these routes.
 */
export function registerAgentRoutes(
  fastify: FastifyInstance,
  deps: { delegations: DelegationService; checkpoints: CheckpointService },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { delegations, checkpoints } = deps;

  app.get(
    '/api/v1/agents',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['agents'],
        summary:
          "The agents acting for you (admins: ?all=true for everyone's), with their limits and activity",
        querystring: Type.Object({ all: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      },
    },
    async (request) => ({ items: await delegations.list(principalOf(request), request.query.all ?? false) }),
  );

  app.delete(
    '/api/v1/agents/:id',
    {
      config: { access: anyUser('tokens:write') },
      schema: {
        tags: ['agents'],
        summary:
          "Revoke an agent's delegation: its next call is refused and its waiting requests are refused",
        params: Type.Object({ id: DelegationId }),
      },
    },
    async (request) => delegations.revoke(principalOf(request), request.params.id, auditContext(request)),
  );

  app.get(
    '/api/v1/agents/requests',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['agents'],
        summary: 'Requests your agents wait on (?state=pending for open ones only)',
        querystring: Type.Object(
          { state: Type.Optional(Type.Literal('pending')), all: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({
      items: await checkpoints.list(principalOf(request), {
        all: request.query.all,
        state: request.query.state,
      }),
    }),
  );

  app.get(
    '/api/v1/agents/requests/:id',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['agents'],
        summary: 'One request an agent waits on: exactly what will happen',
        params: Type.Object({ id: CheckpointId }),
      },
    },
    async (request) => checkpoints.get(principalOf(request), request.params.id),
  );

  for (const verb of ['approve', 'refuse'] as const)
    app.post(
      `/api/v1/agents/requests/:id/${verb}`,
      {
        config: { access: anyUser('apps:write') },
        schema: {
          tags: ['agents'],
          summary:
            verb === 'approve'
              ? 'Approve what your agent asked: its next identical call goes ahead, once'
              : 'Refuse what your agent asked: its next identical call is refused with your note',
          params: Type.Object({ id: CheckpointId }),
          body: Type.Optional(Answer),
        },
      },
      async (request) =>
        checkpoints.decide(
          principalOf(request),
          request.params.id,
          { approve: verb === 'approve', ...(request.body?.note ? { note: request.body.note } : {}) },
          auditContext(request),
        ),
    );

  app.get(
    '/api/v1/agents/:id/calls',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['agents'],
        summary: "Every tool call made under a delegation (yours; auditors and admins: anyone's)",
        params: Type.Object({ id: DelegationId }),
      },
    },
    async (request) => ({ items: await delegations.calls(principalOf(request), request.params.id) }),
  );
}
