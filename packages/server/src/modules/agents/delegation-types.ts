import type { AgentDelegationsTable } from '../../db/schema-agents.ts';

/** What an agent may do at all. It never approves, reads a secret or changes policy: no scope says so. */
export const agentScopes = ['apps:read', 'apps:register', 'apps:build', 'apps:deploy'] as const;
export type AgentScope = (typeof agentScopes)[number];

export const tiers = ['low', 'medium', 'high'] as const;
export type Tier = (typeof tiers)[number];

/** The budget and bounds of a delegation, checked by the `microapp.agents` policy on every tool call. */
export type DelegationLimits = {
  registrationsPerDay: number;
  buildsPerDay: number;
  /** Tiers the agent works on without asking; an app of another tier asks the person first. */
  tiers: Tier[];
  /** Tiers whose apps the agent may deploy to live (each deploy still asks); none by default. */
  liveTiers: Tier[];
};

/** What a person's consent grants unless they choose otherwise on the consent page. */
export const defaultLimits: DelegationLimits = {
  registrationsPerDay: 10,
  buildsPerDay: 30,
  tiers: ['low'],
  liveTiers: [],
};

/** How long a consent lasts, in days, as the consent page offers it. */
export const delegationDays = [1, 7, 30] as const;

/** A delegation as the API lists it. */
export type DelegationView = {
  id: string;
  person: string;
  agent: { client: string; version: string | null; model: string | null };
  scopes: AgentScope[];
  limits: DelegationLimits;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
  state: 'active' | 'expired' | 'revoked';
  /** Tool calls made under it, and how many are waiting for the person. */
  calls: number;
  pending: number;
};

export function delegationView(
  row: AgentDelegationsTable,
  person: string,
  now: string,
  counts: { calls: number; pending: number },
): DelegationView {
  return {
    id: row.id,
    person,
    agent: { client: row.client_name, version: row.client_version, model: row.model },
    scopes: JSON.parse(row.scopes) as AgentScope[],
    limits: JSON.parse(row.limits) as DelegationLimits,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    state: row.revoked_at ? 'revoked' : row.expires_at <= now ? 'expired' : 'active',
    ...counts,
  };
}
