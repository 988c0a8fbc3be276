import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { auditContext, principalOf, sessionCookie } from '../../api/auth-hook.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { TokenService } from '../tokens/token-service.ts';
import { anyUser, publicRoute } from './access.ts';
import { type LoginService, safeReturnTo } from './login-service.ts';
import type { Principal } from './principal.ts';
import { findUserById } from './users.ts';

const loginCookie = 'microapp_login';

/** Browser sign-in, sign-out, the session's CSRF token, and the CLI's code-for-token exchange. */
export function registerAuthRoutes(
  fastify: FastifyInstance,
  deps: {
    db: Kysely<Database>;
    login: LoginService;
    tokens: Pick<TokenService, 'create'>;
    secureCookies: boolean;
    publicUrl: () => string;
    /** Where an app's site answers (see runtime/app-hosts.ts). */
    appUrl: (site: string) => string;
  },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { login, tokens } = deps;
  const cookieBase = { httpOnly: true, sameSite: 'lax' as const, secure: deps.secureCookies };

  app.get(
    '/auth/apps/:name',
    {
      config: {
        access: publicRoute('signs a browser in to an app host; checks the platform session itself'),
      },
      schema: {
        tags: ['auth'],
        summary:
          "Sign a browser in to an app's host: with a platform session, send it back to the app with a one-time code",
        params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }) }),
        querystring: Type.Object(
          {
            state: Type.String({ pattern: '^[A-Za-z0-9_-]{32,128}$' }),
            path: Type.Optional(Type.String({ maxLength: 2000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const cookie = request.cookies[sessionCookie];
      const principal = cookie ? await login.sessionPrincipal(cookie) : null;
      // Not signed in to the platform yet: sign in first, then come back here.
      if (!principal) return reply.redirect(`/auth/login?return_to=${encodeURIComponent(request.url)}`, 302);
      const code = await login.issueAppCode(principal.userId, name, request.query.state);
      const back = new URL('/_microapp/callback', deps.appUrl(name));
      back.searchParams.set('code', code);
      back.searchParams.set('path', safeReturnTo(request.query.path));
      return reply.redirect(back.href, 302);
    },
  );

  app.get(
    '/auth/login',
    {
      config: { access: publicRoute('starts sign-in') },
      schema: {
        tags: ['auth'],
        summary: 'Start browser sign-in through the identity provider',
        querystring: Type.Object(
          {
            return_to: Type.Optional(Type.String({ maxLength: 2000 })),
            cli_redirect: Type.Optional(Type.String({ maxLength: 200 })),
            cli_challenge: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' })),
            cli_state: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{8,128}$' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      // The login cookie must be set on the host the identity provider returns to.
      const canonical = new URL(deps.publicUrl());
      if (request.headers.host && request.headers.host !== canonical.host) {
        const target = new URL(request.url, canonical);
        return reply.redirect(target.href, 302);
      }
      const q = request.query;
      const cli =
        q.cli_redirect || q.cli_challenge || q.cli_state
          ? { redirect: q.cli_redirect ?? '', challenge: q.cli_challenge ?? '', state: q.cli_state ?? '' }
          : null;
      if (cli && (!cli.redirect || !cli.challenge || !cli.state))
        throw new AppError(
          'bad_request',
          'a CLI sign-in needs cli_redirect, cli_challenge and cli_state together',
        );
      const { url, state } = await login.begin(q.return_to ?? '/', cli);
      reply.setCookie(loginCookie, state, { ...cookieBase, path: '/auth', maxAge: 600 });
      return reply.redirect(url, 302);
    },
  );

  app.get(
    '/auth/callback',
    {
      config: { access: publicRoute('the identity provider returns here') },
      schema: { tags: ['auth'], hide: true },
    },
    async (request, reply) => {
      const search = new URL(request.url, 'http://x.invalid').search;
      const { user, request: started } = await login.complete(search, request.cookies[loginCookie], {
        requestId: request.id,
        sourceIp: request.ip,
      });
      reply.clearCookie(loginCookie, { path: '/auth' });
      if (started.cli_redirect && started.cli_challenge) {
        const code = await login.issueCliCode(user.id, started.cli_challenge);
        const target = new URL(started.cli_redirect);
        target.searchParams.set('code', code);
        target.searchParams.set('state', started.cli_state ?? '');
        return reply.redirect(target.href, 302);
      }
      const session = await login.createSession(user.id);
      reply.setCookie(sessionCookie, session.cookie, {
        ...cookieBase,
        path: '/',
        expires: new Date(session.expiresAt),
      });
      return reply.redirect(started.return_to, 302);
    },
  );

  app.post(
    '/auth/logout',
    { config: { access: anyUser() }, schema: { tags: ['auth'], summary: 'End the browser session' } },
    async (request, reply) => {
      const cookie = request.cookies[sessionCookie];
      if (cookie) await login.endSession(cookie, auditContext(request));
      reply.clearCookie(sessionCookie, { path: '/' });
      return reply.status(204).send();
    },
  );

  app.get(
    '/api/v1/auth/session',
    {
      config: { access: anyUser() },
      schema: {
        tags: ['auth'],
        summary: 'Who is signed in, with the CSRF token for cookie-authenticated writes',
      },
    },
    async (request) => sessionView(principalOf(request)),
  );

  app.get(
    '/api/v1/auth/browser-session',
    {
      config: {
        access: publicRoute(
          'answers whether the browser is signed in, so a signed-out page load is not an error',
        ),
      },
      schema: {
        tags: ['auth'],
        summary:
          'For the console: { signedIn: false } without a session, else what GET /api/v1/auth/session answers, with signedIn: true',
      },
    },
    async (request) =>
      request.principal ? { signedIn: true, ...sessionView(request.principal) } : { signedIn: false },
  );

  app.post(
    '/api/v1/auth/cli/token',
    {
      config: { access: publicRoute('the CLI proves possession of its PKCE verifier instead') },
      schema: {
        tags: ['auth'],
        summary: 'Exchange a one-time CLI login code and its PKCE verifier for an API token',
        body: Type.Object(
          {
            code: Type.String({ minLength: 10, maxLength: 200 }),
            codeVerifier: Type.String({ minLength: 43, maxLength: 128 }),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const userId = await login.redeemCliCode(request.body.code, request.body.codeVerifier);
      const user = (await findUserById(deps.db, userId))!;
      const issued = await tokens.create(
        userId,
        { name: request.body.name ?? 'microapp CLI', expiresInDays: 30 },
        auditContext(request, user.email),
      );
      return reply.status(201).send({
        token: issued.token,
        token_info: issued.info,
        user: {
          email: user.email,
          name: user.name,
          department: user.department,
          roles: user.roles,
          specialties: user.specialties,
        },
      });
    },
  );
}

/** Who is signed in, as the session endpoints answer it: never a secret but the session's CSRF token. */
function sessionView(p: Principal) {
  return {
    user: {
      id: p.userId,
      email: p.email,
      name: p.name,
      department: p.department,
      roles: p.roles,
      specialties: p.specialties,
    },
    via: p.via.kind,
    scopes: p.scopes,
    csrfToken: p.via.kind === 'session' ? p.via.csrfToken : null,
  };
}
