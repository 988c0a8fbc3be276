import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { LoginService } from '../identity/login-service.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import type { NotificationService } from '../notifications/notification-service.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import type { ChangeService } from '../repos/change-service.ts';
import { createAgentGate } from './agent-gate.ts';
import { type AgentGit, createAgentGit } from './agent-git.ts';
import { createAgentOAuth } from './agent-oauth.ts';
import { registerAgentRoutes } from './agent-routes.ts';
import { createAgentTokens } from './agent-tokens.ts';
import { createCheckpointService } from './checkpoint-service.ts';
import { createDelegationService } from './delegation-service.ts';
import type { McpDeps } from './mcp-common.ts';
import { registerMcpRoutes } from './mcp-routes.ts';
import { registerOAuthRoutes } from './oauth-routes.ts';

/**
 * Agents acting for people: OAuth for MCP clients, the MCP endpoint at /mcp, checkpoints, delegations and
 * their routes, and the job that expires requests nobody answered. Built once, by the composition root.
 */
export async function installAgents(
  app: FastifyInstance,
  deps: {
    db: Kysely<Database>;
    clock: Clock;
    audit: Pick<AuditService, 'record'>;
    engine: PolicyEngine;
    notifications: Pick<NotificationService, 'notify'>;
    login: Pick<LoginService, 'sessionPrincipal'>;
    jobs: Pick<JobRunner, 'register'>;
    publicUrl: () => string;
    version: string;
    services: Omit<McpDeps, 'gate' | 'checkpoints' | 'engine' | 'publicUrl'>;
    /** The app repositories: agents clone and push there, and their changes merge once confirmed. */
    repositories?: { allowAgents: (git: AgentGit) => void; changes: Pick<ChangeService, 'confirmed'> };
  },
) {
  const { db, clock, audit, engine } = deps;
  const refuseConnect = async (agent: { client: string; version: string | null; model: string | null }) => {
    const d = await engine.decide<unknown>('data.microapp.agents.refuse_connect', { agent });
    return Array.isArray(d.result) ? d.result.map(String).sort() : [];
  };
  const resource = () => `${deps.publicUrl()}/mcp`;
  const oauth = createAgentOAuth({ db, clock, audit, refuseConnect, resource });
  const tokens = createAgentTokens({ db, clock, resource });
  const pageUrl = (id: string) => `${deps.publicUrl()}/agents/requests/${id}`;
  const checkpoints = createCheckpointService({
    db,
    clock,
    audit,
    notifications: deps.notifications,
    pageUrl,
  });
  const delegations = createDelegationService({ db, clock, audit });
  const gate = createAgentGate({ db, clock, audit, engine, checkpoints });
  registerOAuthRoutes(app, { oauth, tokens, login: deps.login, publicUrl: deps.publicUrl });
  registerMcpRoutes(app, {
    tokens,
    mcp: { ...deps.services, gate, checkpoints, engine, publicUrl: deps.publicUrl },
    publicUrl: deps.publicUrl,
    version: deps.version,
  });
  registerAgentRoutes(app, { delegations, checkpoints });
  const repositories = deps.repositories;
  if (repositories) {
    repositories.allowAgents(createAgentGit({ db, clock, tokens, gate, checkpoints, pageUrl }));
    checkpoints.onDecided(async (c) => {
      if (c.tool === 'merge_change' && c.state === 'approved' && c.app)
        await repositories.changes.confirmed(c.app, Number(c.input.change));
    });
  }
  await deps.jobs.register({
    name: 'agent-checkpoint-expiry',
    everySeconds: 600,
    run: async () => ({ expired: await checkpoints.expire() }),
  });
  return { oauth, tokens, checkpoints, delegations };
}
