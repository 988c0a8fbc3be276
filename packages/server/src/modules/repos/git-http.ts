import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { agentTokenPrefix, auditContext } from '../../api/auth-hook.ts';
import { AppError } from '../../errors.ts';
import type { AgentSession } from '../agents/agent-gate.ts';
import type { AgentGit } from '../agents/agent-git.ts';
import type { AuditContext } from '../audit/audit-service.ts';
import type { AppView } from '../catalog/app-view.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { publicRoute } from '../identity/access.ts';
import type { Principal } from '../identity/principal.ts';
import type { TokenService } from '../tokens/token-service.ts';
import { backend, receive } from './git-backend.ts';
import { refusedReport } from './git-report.ts';
import type { GitOps } from './gitops.ts';
import type { RepoService } from './repo-service.ts';
import type { RefMove, RepoStore } from './repo-store.ts';

const services = new Set(['git-upload-pack', 'git-receive-pack']);
const repoName = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\.git$/;
const realm = 'Basic realm="microapp", charset="UTF-8"';

/** What a push changed, branch by branch (a null commit: created or deleted). */
export type RefUpdate = RefMove;

export type PushListener = (
  principal: Principal,
  app: AppView,
  updates: RefUpdate[],
  ctx: AuditContext,
  agent: AgentSession | null,
) => Promise<void>;

/** Who a git request comes from: a person (API token), or an agent acting for one (its access token). */
type Caller = { principal: Principal; agent: AgentSession | null };

/**
 * The platform's git server: smart HTTP through Debian's `git http-backend`, behind the platform's identity.
 * A person's API token is the password (`git clone https://x:TOKEN@host/git/APP.git`, or a credential
 * helper); reading follows the app's visibility, pushing is the owner's, and main is protected by the
 * repositories' pre-receive hook. An agent's access token works as its person's, narrowed by its
 * delegation and the agents policy (agents/agent-git.ts). Only the smart protocol's three paths are served.
 */
export function registerGitRoutes(
  fastify: FastifyInstance,
  deps: {
    catalog: Pick<CatalogService, 'get'>;
    repos: RepoService;
    gitops: Pick<GitOps, 'id' | 'ensure' | 'mayRead'>;
    store: RepoStore;
    tokens: Pick<TokenService, 'authenticate'>;
    onPush: PushListener;
    maxPushBytes: number;
    /** Agents, once the platform runs them; until then an agent's token is refused here. */
    agents: () => Pick<AgentGit, 'authenticate' | 'refusals'> | null;
  },
) {
  const access = publicRoute(
    'git smart HTTP: authenticates with HTTP Basic (an API token as the password) itself',
  );
  const pushing = new Map<string, Promise<unknown>>();
  const cgi = { dir: deps.store.dir, maxPushBytes: deps.maxPushBytes };

  async function callerOf(request: FastifyRequest, reply: FastifyReply): Promise<Caller> {
    const header = request.headers.authorization ?? '';
    let token: string | null = null;
    const basic = /^Basic\s+([A-Za-z0-9+/=]{1,2048})$/i.exec(header);
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      token = decoded.slice(decoded.indexOf(':') + 1);
    }
    const bearer = /^Bearer\s+(\S{1,512})$/i.exec(header);
    if (bearer) token = bearer[1]!;
    if (token?.startsWith(agentTokenPrefix)) {
      const agents = deps.agents();
      if (!agents)
        throw new AppError(
          'forbidden',
          "agents are not enabled on this platform: an agent's token works nowhere until they are",
        );
      const session = await agents.authenticate(token, request);
      if ('refused' in session) {
        reply.header('www-authenticate', realm);
        throw new AppError(
          'unauthenticated',
          `the agent's token is refused: ${session.refused}. The agent signs in again through /mcp`,
        );
      }
      return { principal: session.principal, agent: session };
    }
    const principal = token ? await deps.tokens.authenticate(token) : null;
    if (!principal) {
      // git asks for credentials when it sees the challenge, then sends them as HTTP Basic.
      reply.header('www-authenticate', realm);
      throw new AppError(
        'unauthenticated',
        token
          ? 'the API token is invalid, expired or revoked: create one with `microapp tokens create` and use it as the password'
          : 'sign in with an API token as the password (`microapp tokens create --scope apps:read --scope apps:write`)',
      );
    }
    return { principal, agent: null };
  }

  /** The agents policy's refusal of an agent's read or push, as git shows it to the agent. */
  async function agentRefusal(caller: Caller, app: AppView, action: 'read' | 'push') {
    const agents = deps.agents();
    if (!caller.agent || !agents) return null;
    const reasons = await agents.refusals(caller.agent, app, action);
    return reasons.length
      ? new AppError(
          'forbidden',
          `the agents policy refuses ${action === 'read' ? 'reading' : 'pushing to'} ${app.name}'s repository: ${reasons.join('; ')}`,
        )
      : null;
  }

  /** The repository a request names: an app's, or the platform's GitOps repository (read-only). */
  async function targetFor(
    request: FastifyRequest<{ Params: { repo: string } }>,
    caller: Caller,
  ): Promise<{ id: string; app: AppView | null }> {
    const principal = caller.principal;
    if (!principal.scopes.includes('apps:read'))
      throw new AppError('forbidden', 'this API token lacks the scope apps:read, which cloning needs');
    if (request.params.repo === '_gitops.git') {
      if (!deps.gitops.mayRead(principal))
        throw new AppError('forbidden', 'the GitOps repository is for admins, auditors and reviewers');
      await deps.gitops.ensure();
      return { id: deps.gitops.id, app: null };
    }
    const match = repoName.exec(request.params.repo);
    if (!match)
      throw new AppError('not_found', `no repository ${request.params.repo}: its URL is /git/APP.git`);
    const app = await deps.catalog.get(principal, match[1]!, { scorecard: false });
    const refused = await agentRefusal(caller, app, 'read');
    if (refused) throw refused;
    await deps.repos.ensure(app, contextOf(request, caller));
    return { id: app.id, app };
  }

  const contextOf = (request: FastifyRequest, caller: Caller): AuditContext =>
    caller.agent
      ? { ...caller.agent.ctx, requestId: request.id }
      : auditContext(request, caller.principal.email);

  /** Why a push to the target is refused, or null. */
  async function pushRefusal(caller: Caller, target: { app: AppView | null }) {
    if (!target.app)
      return new AppError(
        'forbidden',
        'only the platform commits to the GitOps repository, after its deploy checks',
      );
    return (
      (await deps.repos.pushRefusal(caller.principal, target.app)) ??
      (await deps.repos.hostedRefusal(target.app)) ??
      (await agentRefusal(caller, target.app, 'push'))
    );
  }

  fastify.register(async (scope) => {
    // The pack data streams to git as it arrives; nothing parses it.
    scope.addContentTypeParser(
      ['application/x-git-upload-pack-request', 'application/x-git-receive-pack-request'],
      (_request, payload, done) => done(null, payload),
    );

    scope.get<{ Params: { repo: string }; Querystring: { service?: string } }>(
      '/git/:repo/info/refs',
      { config: { access } },
      async (request, reply) => {
        const caller = await callerOf(request, reply);
        const service = request.query.service;
        if (!service || !services.has(service))
          throw new AppError('not_found', 'only the smart HTTP protocol is served: use git 2.x');
        const target = await targetFor(request, caller);
        if (service === 'git-receive-pack') {
          const refusal = await pushRefusal(caller, target);
          if (refusal) throw refusal;
        }
        await deps.store.sync(target.id);
        return backend(cgi, request, reply, caller.principal, target.id, 'info/refs', `service=${service}`);
      },
    );

    // Nothing else under /git: no dumb-HTTP files (HEAD, objects, config), and not the console's pages.
    scope.get('/git/*', { config: { access } }, async () => {
      throw new AppError(
        'not_found',
        'only the smart HTTP protocol is served: clone with git 2.x from /git/APP.git',
      );
    });

    for (const service of services) {
      scope.post<{ Params: { repo: string } }>(
        `/git/:repo/${service}`,
        { config: { access } },
        async (request, reply) => {
          const caller = await callerOf(request, reply);
          const principal = caller.principal;
          const target = await targetFor(request, caller);
          const app = target.app;
          if (service === 'git-receive-pack') {
            const refusal = await pushRefusal(caller, target);
            if (refusal || !app) throw refusal;
            // One push at a time per repository, so what changed is what this push changed.
            const previous = pushing.get(app.id) ?? Promise.resolve();
            const mine = previous.then(() => push(request, reply, caller, app));
            const settled = mine.catch(() => {});
            pushing.set(app.id, settled);
            // The last push of a repository leaves nothing behind: the map holds only pushes in flight.
            await settled.then(() => pushing.get(app.id) === settled && pushing.delete(app.id));
            await mine;
            return reply;
          }
          await deps.store.sync(target.id);
          return backend(cgi, request, reply, principal, target.id, service, '');
        },
      );
    }
  });

  /**
   * A push: `git receive-pack` on the repository with no other write in between, then its moves published
   * (shared repositories: to the database, which refuses a branch another replica moved meanwhile). git's
   * answer is held until then, so the pusher reads "ok" only for a push that landed.
   */
  async function push(request: FastifyRequest, reply: FastifyReply, caller: Caller, app: AppView) {
    let updates: RefUpdate[] = [];
    let refused: { reason: string; refs: string[] } | null = null;
    // The pack is received whole before the repository is held: a slow pusher never keeps others waiting.
    const spool = mkdtempSync(join(tmpdir(), 'microapp-push-'));
    try {
      const file = join(spool, 'request');
      await receive(request.body as NodeJS.ReadableStream, file, deps.maxPushBytes);
      (request as { body: unknown }).body = createReadStream(file);
    } catch (error) {
      rmSync(spool, { recursive: true, force: true });
      throw error;
    }
    const held = await deps.store
      .exclusive(app.id, async (copy) => {
        const before = await copy.refs();
        const answer = await backend(
          cgi,
          request,
          reply,
          caller.principal,
          app.id,
          'git-receive-pack',
          '',
          true,
        );
        if (answer?.code !== 0) return answer;
        const after = await copy.refs();
        for (const ref of new Set([...before.keys(), ...after.keys()]))
          if (before.get(ref) !== after.get(ref))
            updates.push({ ref, before: before.get(ref) ?? null, after: after.get(ref) ?? null });
        try {
          await copy.publish(updates);
        } catch (error) {
          // git took the push, the platform did not: the pusher is told so, branch by branch.
          if (!(error instanceof AppError))
            request.log.error({ err: error, app: app.name }, 'a push was not saved');
          refused = {
            reason:
              error instanceof AppError
                ? error.message
                : 'the push could not be saved, nothing changed: push again',
            refs: updates.map((u) => u.ref),
          };
          updates = [];
        }
        return answer;
      })
      .finally(() => rmSync(spool, { recursive: true, force: true }));
    if (!held) return;
    if (refused) {
      const { reason, refs } = refused as { reason: string; refs: string[] };
      held.body = [refusedReport(Buffer.concat(held.body), refs, reason)];
    }
    if (updates.length)
      await deps
        .onPush(caller.principal, app, updates, contextOf(request, caller), caller.agent)
        .catch((error: Error) => request.log.error({ err: error, app: app.name }, 'a push was not handled'));
    reply.raw.writeHead(held.status, held.headers);
    reply.raw.end(Buffer.concat(held.body));
  }
}
