import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.ts';
import { publicRoute } from '../identity/access.ts';
import { parseDelivery, verifyDelivery } from './host-webhooks.ts';
import type { HostedRepos } from './hosted-repos.ts';

/** The most a webhook delivery may send: a pull request event is a few kilobytes. */
const maxDeliveryBytes = 1024 * 1024;

/**
 * The company's GitHub or GitLab tells the platform about pull (merge) requests at
 * `POST /hooks/git/github` (or `/gitlab`). A delivery counts only when it carries the shared secret
 * (GitHub's HMAC of the exact body, GitLab's token); anything else is 401 and changes nothing.
 */
export function registerHostWebhookRoutes(
  app: FastifyInstance,
  deps: { hosted: Pick<HostedRepos, 'kind' | 'delivered'>; secret: string },
) {
  const { kind } = deps.hosted;
  app.register(async (scope) => {
    // The signature is over the bytes as sent: the body is kept as it arrived, and parsed only once verified.
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'buffer', bodyLimit: maxDeliveryBytes },
      (_request, body, done) => done(null, body),
    );
    scope.post(
      `/hooks/git/${kind}`,
      {
        config: { access: publicRoute(`${kind}'s webhook: verified by the shared secret it carries`) },
        bodyLimit: maxDeliveryBytes,
        schema: { hide: true },
      },
      async (request, reply) => {
        const raw = request.body;
        if (!Buffer.isBuffer(raw))
          throw new AppError('bad_request', 'a webhook delivery is JSON (content type application/json)');
        if (!verifyDelivery(kind, deps.secret, request.headers, raw))
          throw new AppError(
            'unauthenticated',
            `the delivery does not carry the webhook secret the platform was given (MICROAPP_GIT_HOST_WEBHOOK_SECRET_FILE)`,
          );
        let payload: unknown;
        try {
          payload = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new AppError('bad_request', 'the delivery is not JSON');
        }
        const event = parseDelivery(kind, request.headers, payload);
        if (!event)
          return reply
            .code(202)
            .send({ handled: false, detail: 'not a pull request event the platform acts on' });
        return reply.code(202).send(await deps.hosted.delivered(event));
      },
    );
  });
}
