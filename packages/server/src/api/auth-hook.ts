import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ReadCache } from '../db/read-cache.ts';
import { AppError } from '../errors.ts';
import type { AuditContext } from '../modules/audit/audit-service.ts';
import type { AccessRule } from '../modules/identity/access.ts';
import type { LoginService } from '../modules/identity/login-service.ts';
import type { Principal } from '../modules/identity/principal.ts';
import type { TokenService } from '../modules/tokens/token-service.ts';

/** Agents' access tokens start with this (see modules/agents). */
export const agentTokenPrefix = 'maa_';

export const sessionCookie = 'microapp_session';
const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A registered route with its declared access rule, for the route-table test and docs. */
export type DeclaredRoute = { method: string; url: string; access: AccessRule | null };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyInstance {
    declaredRoutes: DeclaredRoute[];
  }
}

/** The authenticated principal of a route whose access rule guarantees one. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthenticated', 'sign in first: run `microapp login`');
  return request.principal;
}

/** Who did it and from where, for the audit trail. */
export function auditContext(request: FastifyRequest, actor?: string): AuditContext {
  const agent = request.principal?.agent;
  return {
    actor: actor ?? request.principal?.email ?? 'anonymous',
    requestId: request.id,
    sourceIp: request.ip,
    ...(agent ? { act: agent } : {}),
  };
}

/** Routes under these prefixes must declare who may call them. */
const governedPrefixes = ['/api/', '/auth/'];

/**
 * Authenticates every request (bearer token or session cookie), then enforces the route's declared
 * access rule, the token's scope, and CSRF on cookie-authenticated writes. A governed route without a
 * rule makes the server fail to start.
 */
export function installAuth(
  app: FastifyInstance,
  deps: {
    tokens: Pick<TokenService, 'authenticate'>;
    login: Pick<LoginService, 'sessionPrincipal'>;
    /**
     * Tokens and sessions kept until a revocation, an expiry change or a user's change commits (the
     * gateway's read cache): a revoked token is refused from the next request on.
     */
    cache?: ReadCache;
  },
) {
  const { cache } = deps;
  app.decorateRequest('principal', null);

  const table: DeclaredRoute[] = [];
  app.decorate('declaredRoutes', table);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') table.push({ method, url: route.url, access: route.config?.access ?? null });
    }
    const governed =
      governedPrefixes.some((p) => route.url.startsWith(p)) || route.url === '/api/openapi.json';
    if (governed && !route.config?.access)
      throw new Error(`route ${route.method} ${route.url} declares no access rule (config.access)`);
  });

  app.addHook('onRequest', async (request) => {
    const rule = request.routeOptions.config?.access as AccessRule | undefined;
    const header = request.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      // An agent's token is for the MCP endpoint, whose tools are bounded and checkpointed by policy: the
      // REST API (approvals, secrets, live deploys, tokens) is for people and their own tokens.
      if (match?.[1]?.startsWith(agentTokenPrefix) && rule?.kind !== 'public')
        throw new AppError(
          'forbidden',
          "an agent's token works only at /mcp and at the git server (/git): agents act through the platform's MCP tools and change requests, never approve, read secrets or deploy to live through the API; ask the person the agent acts for to do it",
        );
      await cache?.begin();
      const principal = match ? await deps.tokens.authenticate(match[1]!, cache) : null;
      if (!principal && rule?.kind !== 'public')
        throw new AppError(
          'unauthenticated',
          'the API token is invalid, expired or revoked; run `microapp login` or create a new token',
        );
      request.principal = principal;
    } else {
      const cookie = request.cookies[sessionCookie];
      if (cookie) {
        await cache?.begin();
        request.principal = await deps.login.sessionPrincipal(cookie, null, cache);
      }
    }
    if (!rule || rule.kind === 'public') return;
    const principal = request.principal;
    if (!principal)
      throw new AppError('unauthenticated', 'sign in first: run `microapp login` or open the console');
    if (principal.via.kind === 'session' && !safeMethods.has(request.method)) {
      const sent = request.headers['x-csrf-token'];
      if (sent !== principal.via.csrfToken)
        throw new AppError(
          'csrf_failed',
          'send the X-CSRF-Token header from GET /api/v1/auth/session with cookie-authenticated writes',
        );
    }
    if (rule.kind === 'roles' && !rule.roles.some((r) => principal.roles.includes(r)))
      throw new AppError(
        'forbidden',
        `this needs one of the roles: ${rule.roles.join(', ')}; you have ${principal.roles.join(', ') || 'none'}. Ask a platform admin: roles come from your groups in the company's sign-in, and an admin can also do this for you`,
      );
    if (rule.scope && !principal.scopes.includes(rule.scope))
      throw new AppError(
        'forbidden',
        `this API token lacks the scope ${rule.scope}; create one with --scope ${rule.scope}`,
      );
  });
}
