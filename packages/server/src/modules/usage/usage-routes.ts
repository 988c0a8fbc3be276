import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../api/auth-hook.ts';
import { AppError } from '../../errors.ts';
import { anyUser, publicRoute } from '../identity/access.ts';
import { hasRole } from '../identity/principal.ts';
import type { UsageService } from './usage-service.ts';

/** Whether `presented` is the token in `file` (read now, so a replaced file rotates it), compared in constant time. */
function sameToken(presented: string, file: string): boolean {
  let expected: Buffer;
  try {
    expected = Buffer.from(readFileSync(file, 'utf8').trim());
  } catch {
    return false;
  }
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const AppName = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' });

/** How much an app is used (for its owner, reviewers and dashboards), and Prometheus metrics. */
export function registerUsageRoutes(
  fastify: FastifyInstance,
  deps: {
    usage: UsageService;
    /** The scraper's token, in a file read at each scrape (MICROAPP_METRICS_TOKEN_FILE), or none. */
    metricsTokenFile?: string | null;
  },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { usage } = deps;

  app.get(
    '/api/v1/apps/:name/usage',
    {
      config: { access: anyUser('apps:read') },
      schema: {
        tags: ['runtime'],
        summary:
          'Requests, users, errors and bytes through the gateway over the last `days` days, and when the app was last used',
        params: Type.Object({ name: AppName }),
        querystring: Type.Object(
          { days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, default: 30 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => usage.summary(principalOf(request), request.params.name, request.query.days ?? 30),
  );

  app.get(
    '/metrics',
    {
      // App names and traffic are internal information: the scraper's own token, or an admin's or an
      // auditor's API token.
      config: {
        access: publicRoute(
          "the metrics scraper's token, or an admin's or auditor's API token, checked here",
        ),
      },
      schema: { hide: true },
    },
    async (request, reply) => {
      const presented = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
      const scraper = Boolean(
        presented && deps.metricsTokenFile && sameToken(presented, deps.metricsTokenFile),
      );
      if (!scraper) {
        const principal = request.principal;
        if (!principal)
          throw new AppError(
            'unauthenticated',
            "present the metrics scraper's token (MICROAPP_METRICS_TOKEN_FILE) or an admin's or auditor's API token as Bearer",
          );
        if (!hasRole(principal, 'admin', 'auditor'))
          throw new AppError(
            'forbidden',
            `metrics are for admins, auditors and the metrics scraper; you have ${principal.roles.join(', ') || 'no role'}`,
          );
      }
      const { body, contentType } = await usage.metrics();
      return reply.type(contentType).send(body);
    },
  );
}
