import type { IncomingHttpHeaders } from 'node:http';
import type { Kysely } from 'kysely';
import type { ReadCache } from '../../db/read-cache.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import type { LoginService } from '../identity/login-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import { accessInput } from '../policy/access-input.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import type { TokenService } from '../tokens/token-service.ts';
import { crossOriginWrite } from './browser-isolation.ts';
import type { Upstream } from './cluster-routes.ts';
import { type DeploymentService, parseSite } from './deployment-service.ts';

/** What the gateway needs of a request: a Fastify request, or the raw request of a WebSocket upgrade. */
export type Caller = {
  headers: IncomingHttpHeaders;
  url: string;
  method: string;
  id: string;
  ip: string;
  cookies?: Record<string, string | undefined>;
};

/**
 * Who may use which app through the gateway: the caller's identity, the app, its access policy, its
 * lifecycle hold and its running instance. What every request reads (the token or session, the app, the
 * hold) comes from the read cache, which forgets it when a write it depends on commits (db/read-cache.ts).
 */
export function createAdmission(deps: {
  tokens: Pick<TokenService, 'authenticate'>;
  login: Pick<LoginService, 'sessionPrincipal'>;
  catalog: Pick<CatalogService, 'get'>;
  engine: Pick<PolicyEngine, 'decideKept' | 'log'> | null;
  deployments: Pick<DeploymentService, 'instanceFor' | 'clusterInstance'>;
  audit: Pick<AuditService, 'record'>;
  db: Kysely<Database>;
  hold: (appId: string) => Promise<{ status: number; message: string } | null>;
  cache: ReadCache;
  appSessionCookie: string;
}) {
  const { appSessionCookie } = deps;

  /** Who calls: an API token with apps:use, or a session made for this app's host. */
  async function principalOf(request: Caller, app: string): Promise<Principal | null> {
    const auth = request.headers.authorization;
    if (auth) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      const principal = m ? await deps.tokens.authenticate(m[1]!, deps.cache) : null;
      if (principal && !principal.scopes.includes('apps:use'))
        throw new AppError(
          'forbidden',
          `this token was not created to use apps (it has ${principal.scopes.join(', ')}); create one with \`microapp tokens create --scope apps:use\``,
        );
      return principal;
    }
    // Only a session made for this app's host: a platform session or another app's is not accepted.
    const cookie = request.cookies?.[appSessionCookie];
    return cookie ? deps.login.sessionPrincipal(cookie, app, deps.cache) : null;
  }

  /** The app and its running instance, when this caller may use it; refusals are audited. */
  async function admit(request: Caller, site: string, principal: Principal) {
    const { name, env } = parseSite(site);
    let app: Awaited<ReturnType<CatalogService['get']>>;
    try {
      app = await deps.catalog.get(principal, name, { scorecard: false, cache: deps.cache });
    } catch {
      throw new AppError('not_found', `there is no app ${name}`);
    }
    // Another app's page (or any other site) sending this one a change with the user's session.
    const crossOrigin = crossOriginWrite(request.method, request.headers, app.manifest.web?.acceptFrom);
    if (crossOrigin)
      throw new AppError(
        'forbidden',
        `${crossOrigin}; if ${name} should accept it, its owner lists that site under web.acceptFrom in microapp.yaml`,
      );
    if (deps.engine) {
      const input = accessInput(principal, app);
      const d = await deps.engine.decideKept<boolean>('data.microapp.access.allow', input);
      if (d.result !== true) {
        await deps.db.transaction().execute(async (trx) => {
          await deps.engine!.log(trx, [d], name, request.id);
          await deps.audit.record(
            trx,
            { actor: principal.email, requestId: request.id, sourceIp: request.ip },
            {
              action: 'gateway.denied',
              targetType: 'app',
              target: name,
              reason: "the app's access policy",
              summary: { method: request.method, path: request.url.split('?')[0], revision: d.revision },
            },
          );
        });
        throw new AppError('forbidden', `${principal.email} may not use ${name} (access policy)`);
      }
    }
    // A preview is for the people who decide on the app, not for its audience yet.
    if (env === 'preview' && app.owner !== principal.email && !hasRole(principal, 'reviewer', 'admin'))
      throw new AppError(
        'forbidden',
        `the preview of ${name} is for its owner and reviewers; ${name} itself is at ${name}.apps…`,
      );
    const held = await deps.cache.memo('hold', app.id, () => deps.hold(app.id));
    if (held) throw new AppError(held.status === 410 ? 'gone' : 'unavailable', held.message);
    let instance: Upstream | null | undefined;
    try {
      instance = await deps.deployments.instanceFor(site);
    } catch {
      instance = undefined;
    }
    // Not here: on the cluster, when the Kubernetes driver runs it and the gateway reaches its Service.
    instance ??= await deps.cache.memo('cluster-route', `${app.id}:${env}`, () =>
      deps.deployments.clusterInstance(app.id, site, env),
    );
    if (!instance)
      throw new AppError(
        'unavailable',
        env === 'preview'
          ? `the preview of ${name} is not running; its owner starts it from the app's page in the console`
          : `${name} is not running; its owner starts it from the app's page in the console`,
      );
    return { app, instance };
  }

  return { principalOf, admit };
}
