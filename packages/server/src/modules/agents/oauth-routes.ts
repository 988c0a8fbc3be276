import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { auditContext, sessionCookie } from '../../api/auth-hook.ts';
import { perCallerLimit } from '../../api/rate-limit.ts';
import { AppError } from '../../errors.ts';
import { publicRoute } from '../identity/access.ts';
import type { LoginService } from '../identity/login-service.ts';
import { type AgentOAuth, OAuthError } from './agent-oauth.ts';
import type { AgentTokens } from './agent-tokens.ts';
import { consentPage, consentPagePolicy, errorPage } from './consent-page.ts';
import { agentScopes } from './delegation-types.ts';

/** Where an MCP client learns how to get a token for /mcp (RFC 9728), and what the platform's AS offers (RFC 8414). */
export function protectedResourceMetadata(publicUrl: string) {
  return {
    resource: `${publicUrl}/mcp`,
    authorization_servers: [publicUrl],
    scopes_supported: [...agentScopes],
    bearer_methods_supported: ['header'],
    resource_name: 'microapp MCP endpoint',
  };
}

function authorizationServerMetadata(publicUrl: string) {
  return {
    issuer: publicUrl,
    authorization_endpoint: `${publicUrl}/oauth/authorize`,
    token_endpoint: `${publicUrl}/oauth/token`,
    registration_endpoint: `${publicUrl}/oauth/register`,
    scopes_supported: [...agentScopes],
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none'],
  };
}

const flat = (q: unknown): Record<string, string | undefined> =>
  Object.fromEntries(
    Object.entries((q ?? {}) as Record<string, unknown>).map(([k, v]) => [
      k,
      typeof v === 'string' ? v : undefined,
    ]),
  );

const noStore = (reply: FastifyReply) =>
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

/**
 * OAuth 2.1 for MCP clients: metadata, dynamic registration, the consent page and the token endpoint.
 * Every route is public by nature (an agent has no token yet); each checks what it needs itself.
 */
export function registerOAuthRoutes(
  fastify: FastifyInstance,
  deps: {
    oauth: AgentOAuth;
    tokens: Pick<AgentTokens, 'token'>;
    login: Pick<LoginService, 'sessionPrincipal'>;
    publicUrl: () => string;
  },
) {
  const { oauth } = deps;
  // Registration needs no account: a flood from one address is slowed, not a burst of honest agents.
  const registrations = perCallerLimit({ burst: 30, perSecond: 0.5 });
  const tokens = perCallerLimit({ burst: 30, perSecond: 2 });

  // Refusals reach OAuth clients in OAuth's own error format (RFC 6749 §5.2), which their libraries parse.
  const limited = (check: () => void) => {
    try {
      check();
    } catch (error) {
      if (error instanceof AppError) throw new OAuthError('temporarily_unavailable', error.message, 429);
      throw error;
    }
  };

  const oauthFail = (reply: FastifyReply, error: unknown) => {
    if (error instanceof OAuthError)
      return noStore(reply)
        .status(error.status === 302 ? 400 : error.status)
        .send({ error: error.error, error_description: error.message });
    throw error;
  };

  fastify.register(async (app) => {
    // Token and consent requests are forms (RFC 6749); only these routes read them.
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 16_384 },
      (_r, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );

    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp'])
      app.get(
        path,
        {
          config: { access: publicRoute('OAuth protected resource metadata (RFC 9728)') },
          schema: { hide: true },
        },
        async () => protectedResourceMetadata(deps.publicUrl()),
      );
    app.get(
      '/.well-known/oauth-authorization-server',
      {
        config: { access: publicRoute('OAuth authorization server metadata (RFC 8414)') },
        schema: { hide: true },
      },
      async () => authorizationServerMetadata(deps.publicUrl()),
    );

    app.post(
      '/oauth/register',
      {
        config: { access: publicRoute('dynamic client registration for MCP clients (RFC 7591)') },
        schema: { hide: true },
      },
      async (request, reply) => {
        try {
          limited(() => registrations(request.ip, 'agent registrations'));
          const c = await oauth.registerClient((request.body ?? {}) as Record<string, unknown>);
          return noStore(reply)
            .status(201)
            .send({
              client_id: c.id,
              client_id_issued_at: Math.floor(Date.parse(c.created_at) / 1000),
              client_name: c.name,
              redirect_uris: JSON.parse(c.redirect_uris),
              grant_types: ['authorization_code', 'refresh_token'],
              response_types: ['code'],
              token_endpoint_auth_method: 'none',
              ...(c.version ? { software_version: c.version } : {}),
              ...(c.model ? { model: c.model } : {}),
            });
        } catch (error) {
          return oauthFail(reply, error);
        }
      },
    );

    /** The consent page's request: the person must be signed in; errors the client may hear go back to it. */
    const authorize = async (
      request: FastifyRequest,
      reply: FastifyReply,
      answer: Record<string, string | undefined> | null,
    ) => {
      const query = flat(request.query);
      let req: Awaited<ReturnType<AgentOAuth['checkAuthorization']>>;
      try {
        req = await oauth.checkAuthorization(query);
      } catch (error) {
        if (error instanceof AppError)
          return reply
            .status(400)
            .header('content-security-policy', consentPagePolicy)
            .type('text/html; charset=utf-8')
            .send(errorPage(error.message));
        if (error instanceof OAuthError && error.status === 302) {
          const back = new URL(query.redirect_uri!);
          back.searchParams.set('error', error.error);
          back.searchParams.set('error_description', error.message);
          if (query.state) back.searchParams.set('state', query.state);
          return reply.redirect(back.href, 302);
        }
        throw error;
      }
      const cookie = request.cookies[sessionCookie];
      const principal = cookie ? await deps.login.sessionPrincipal(cookie) : null;
      if (!principal) return reply.redirect(`/auth/login?return_to=${encodeURIComponent(request.url)}`, 302);
      const search = new URL(request.url, 'http://x.invalid').search.slice(1);
      if (!answer) {
        if (principal.via.kind !== 'session')
          throw new AppError('forbidden', 'consent needs a signed-in person');
        return (
          reply
            .header('x-frame-options', 'DENY')
            // No form-action: browsers apply it to the redirect after the form too, which goes to the agent.
            .header('content-security-policy', consentPagePolicy)
            .header('cache-control', 'no-store')
            .type('text/html; charset=utf-8')
            .send(consentPage(req, principal.email, principal.via.csrfToken, search))
        );
      }
      if (principal.via.kind !== 'session' || answer.csrf !== principal.via.csrfToken)
        throw new AppError(
          'csrf_failed',
          'the consent form is stale or came from another site; open the agent sign-in again',
        );
      if (answer.decision !== 'allow' && answer.decision !== 'deny')
        throw new AppError('bad_request', 'decision must be allow or deny');
      const location = await oauth.consent(
        principal,
        req,
        {
          allow: answer.decision === 'allow',
          days: Number(answer.days ?? 7),
          liveLow: answer.live_low === 'on',
        },
        auditContext(Object.assign(request, { principal })),
      );
      return reply.redirect(location, 302);
    };

    app.get(
      '/oauth/authorize',
      {
        config: { access: publicRoute('the consent page; checks the platform session itself') },
        schema: { hide: true },
      },
      (request, reply) => authorize(request, reply, null),
    );
    app.post(
      '/oauth/authorize',
      {
        config: { access: publicRoute('the consent answer; checks the session and its CSRF token itself') },
        schema: { hide: true },
      },
      (request, reply) => authorize(request, reply, flat(request.body)),
    );

    app.post(
      '/oauth/token',
      {
        config: { access: publicRoute('the OAuth token endpoint; checks the code or refresh token itself') },
        schema: { hide: true },
      },
      async (request, reply) => {
        try {
          limited(() => tokens(request.ip, 'token requests'));
          return noStore(reply).send(await deps.tokens.token(flat(request.body)));
        } catch (error) {
          return oauthFail(reply, error);
        }
      },
    );
  });
}
