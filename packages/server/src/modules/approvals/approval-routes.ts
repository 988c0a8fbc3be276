import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext, principalOf } from '../../api/auth-hook.ts';
import { AppError } from '../../errors.ts';
import { rolesOnly } from '../identity/access.ts';
import type { ApprovalService, Decision } from './approval-service.ts';

const Comment = Type.String({ minLength: 1, maxLength: 4000 });

/** The review queue and reviewers' decisions. */
export function registerApprovalRoutes(fastify: FastifyInstance, deps: { approvals: ApprovalService }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { approvals } = deps;

  app.get(
    '/api/v1/approvals',
    {
      config: { access: rolesOnly(['reviewer', 'admin', 'auditor'], 'apps:read') },
      schema: {
        tags: ['approvals'],
        summary: 'Apps waiting for review (mine=true: those you can review now)',
        querystring: Type.Object({ mine: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      },
    },
    async (request) => ({
      items: await approvals.pending(principalOf(request), request.query.mine ?? false),
    }),
  );

  app.post(
    '/api/v1/apps/:name/reviews',
    {
      config: { access: rolesOnly(['reviewer'], 'approvals:write') },
      schema: {
        tags: ['approvals'],
        summary: 'Approve, reject (reason required) or request changes (comment required)',
        params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }) }),
        body: Type.Object(
          {
            decision: Type.Unsafe<'approve' | 'reject' | 'request_changes'>({
              type: 'string',
              enum: ['approve', 'reject', 'request_changes'],
            }),
            comment: Type.Optional(Comment),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { decision, comment } = request.body;
      let d: Decision;
      if (decision === 'approve') d = { kind: 'approve', comment };
      else if (!comment?.trim())
        throw new AppError(
          'validation_failed',
          decision === 'reject'
            ? 'a rejection needs a reason'
            : 'a request for changes needs a comment saying what to change',
          [{ path: '/comment', message: 'is required for this decision' }],
        );
      else
        d =
          decision === 'reject' ? { kind: 'reject', reason: comment } : { kind: 'request_changes', comment };
      return approvals.decide(principalOf(request), request.params.name, d, auditContext(request));
    },
  );
}
