import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditContext } from '../../api/auth-hook.ts';
import { rolesOnly } from '../identity/access.ts';
import type { DevClock } from './dev-clock.ts';
import type { JobRunner } from './job-runner.ts';

/** Durable jobs for operators, and (on a `--dev` server only) moving the clock to walk schedules. */
export function registerJobRoutes(fastify: FastifyInstance, deps: { jobs: JobRunner; devClock: DevClock }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/api/v1/jobs',
    {
      config: { access: rolesOnly(['admin', 'auditor']) },
      schema: { tags: ['jobs'], summary: 'Scheduled jobs: when each runs next, its last result and error' },
    },
    async () => ({ items: await deps.jobs.list() }),
  );

  app.post(
    '/api/v1/dev/clock',
    {
      config: { access: rolesOnly(['admin']) },
      schema: {
        tags: ['jobs'],
        summary:
          'Dev servers only: move the platform clock forward (e.g. "61d") and run the jobs that became due',
        body: Type.Object(
          { advance: Type.String({ minLength: 2, maxLength: 20, description: 'e.g. 61d, 12h, 2w, 1d12h' }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => deps.devClock.advance(request.body.advance, auditContext(request)),
  );
}
