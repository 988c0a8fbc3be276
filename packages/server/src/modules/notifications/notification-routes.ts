import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../api/auth-hook.ts';
import { anyUser } from '../identity/access.ts';
import type { NotificationService } from './notification-service.ts';

/** The caller's own inbox: what the platform told them, and the console page that answers each. */
export function registerNotificationRoutes(
  fastify: FastifyInstance,
  deps: { notifications: NotificationService },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { notifications } = deps;

  app.get(
    '/api/v1/notifications',
    {
      config: { access: anyUser() },
      schema: {
        tags: ['notifications'],
        summary: 'Your notifications, newest first',
        querystring: Type.Object(
          {
            unread: Type.Optional(Type.Boolean()),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => ({
      items: await notifications.inbox(principalOf(request), {
        unread: request.query.unread ?? false,
        limit: request.query.limit ?? 50,
      }),
    }),
  );

  app.get(
    '/api/v1/notifications/preferences',
    {
      config: { access: anyUser() },
      schema: { tags: ['notifications'], summary: 'Your notification preferences' },
    },
    async (request) => notifications.preferences(principalOf(request)),
  );

  app.put(
    '/api/v1/notifications/preferences',
    {
      config: { access: anyUser() },
      schema: {
        tags: ['notifications'],
        summary:
          'Choose whether notifications also reach you by e-mail, and (reviewers) whether you get the daily digest; the inbox always has everything',
        body: Type.Object(
          { email: Type.Optional(Type.Boolean()), digest: Type.Optional(Type.Boolean()) },
          { additionalProperties: false, minProperties: 1 },
        ),
      },
    },
    async (request) => notifications.setPreferences(principalOf(request), request.body),
  );

  app.post(
    '/api/v1/notifications/:id/read',
    {
      config: { access: anyUser() },
      schema: {
        tags: ['notifications'],
        summary: 'Mark one of your notifications read',
        params: Type.Object({ id: Type.String({ pattern: '^ntf_[a-z0-9]{20}$' }) }),
      },
    },
    async (request) => notifications.markRead(principalOf(request), request.params.id),
  );
}
