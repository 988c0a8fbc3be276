import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { principalOf } from '../../api/auth-hook.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { anyUser, publicRoute, rolesOnly } from '../identity/access.ts';
import { hasRole } from '../identity/principal.ts';
import { type AuditCheckpoints, type Checkpoint, checkpointProblem } from './audit-checkpoints.ts';
import type { AuditService } from './audit-service.ts';

const CheckpointBody = Type.Object(
  {
    type: Type.Literal('microapp.audit.checkpoint/v1'),
    seq: Type.Integer({ minimum: 0 }),
    head: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    at: Type.String({ maxLength: 40 }),
    keyid: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    signature: Type.String({ maxLength: 200 }),
  },
  { additionalProperties: false },
);

/** Read the audit trail (auditors and admins: all; creators: their own apps') and verify its chain. */
export function registerAuditRoutes(
  fastify: FastifyInstance,
  deps: { db: Kysely<Database>; audit: AuditService; checkpoints: AuditCheckpoints },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { audit, db, checkpoints } = deps;

  /** The chain checked against the platform's newest signed checkpoint and any the caller brings. */
  async function verifyWith(brought: Checkpoint | undefined) {
    if (brought) {
      const problem = checkpointProblem(brought, checkpoints.publicPem);
      if (problem) throw new AppError('bad_request', `the checkpoint is refused: ${problem}`);
    }
    const own = await checkpoints.latest();
    return audit.verify([own, brought].filter((c): c is Checkpoint => Boolean(c)));
  }

  app.get(
    '/api/v1/audit/events',
    {
      config: { access: anyUser('audit:read') },
      schema: {
        tags: ['audit'],
        summary: 'Audit events in chain order; page with after=<seq of the last event>',
        querystring: Type.Object(
          {
            since: Type.Optional(Type.String({ format: 'date-time' })),
            after: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
            app: Type.Optional(Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' })),
            action: Type.Optional(
              Type.String({
                pattern: '^[a-z_]+(\\.[a-z_]+)*\\.?$',
                maxLength: 100,
                description: 'an action, or a prefix ending in "." (e.g. lifecycle.)',
              }),
            ),
            actor: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const p = principalOf(request);
      const limit = request.query.limit ?? 200;
      let targets: { type: string; names: string[] } | undefined;
      if (!hasRole(p, 'auditor', 'admin')) {
        const own = await db
          .selectFrom('apps')
          .select('name')
          .where((eb) => eb.or([eb('owner', '=', p.email), eb('registered_by', '=', p.userId)]))
          .execute();
        targets = { type: 'app', names: own.map((r) => r.name) };
      }
      const since = request.query.since ? new Date(request.query.since).toISOString() : undefined;
      const { app: appName, action, actor } = request.query;
      if (appName)
        targets = { type: 'app', names: targets ? targets.names.filter((n) => n === appName) : [appName] };
      const items = await audit.list({ afterSeq: request.query.after, since, limit, targets, action, actor });
      return { items, next: items.length === limit ? items.at(-1)!.seq : null };
    },
  );

  app.get(
    '/api/v1/audit/verify',
    {
      config: { access: rolesOnly(['auditor', 'admin'], 'audit:read') },
      schema: {
        tags: ['audit'],
        summary:
          "Check the whole hash chain, and hold it against the platform's newest signed checkpoint; names the first event that does not fit",
      },
    },
    async () => verifyWith(undefined),
  );

  app.post(
    '/api/v1/audit/verify',
    {
      config: { access: rolesOnly(['auditor', 'admin'], 'audit:read') },
      schema: {
        tags: ['audit'],
        summary:
          'Check the chain against a signed checkpoint you kept (and the platform’s newest): truncation and a recomputed chain both fail',
        body: Type.Object({ checkpoint: CheckpointBody }, { additionalProperties: false }),
      },
    },
    async (request) => verifyWith(request.body.checkpoint as Checkpoint),
  );

  app.post(
    '/api/v1/audit/checkpoints',
    {
      config: { access: rolesOnly(['auditor', 'admin'], 'audit:read') },
      schema: {
        tags: ['audit'],
        summary:
          "Sign a checkpoint of the chain's head now (or return the newest, when nothing happened since)",
      },
    },
    async () => ({ checkpoint: await checkpoints.make(), publicKey: checkpoints.publicPem }),
  );

  app.get(
    '/api/v1/audit/checkpoints/latest',
    {
      config: { access: rolesOnly(['auditor', 'admin'], 'audit:read') },
      schema: { tags: ['audit'], summary: 'The newest signed checkpoint of the audit chain' },
    },
    async () => ({ checkpoint: await checkpoints.latest(), publicKey: checkpoints.publicPem }),
  );

  app.get(
    '/api/v1/audit/checkpoints/key.pub',
    {
      config: { access: publicRoute('public keys exist to be shared') },
      schema: { tags: ['audit'], summary: 'The public key that verifies audit checkpoints (PEM)' },
    },
    async (_request, reply) => reply.type('application/x-pem-file').send(checkpoints.publicPem),
  );
}
