/** Platform roles. A user may hold several. */
export const roles = ['creator', 'reviewer', 'admin', 'auditor'] as const;
export type Role = (typeof roles)[number];

/** Review specialties a reviewer may hold. */
export const specialties = ['security', 'compliance'] as const;
export type Specialty = (typeof specialties)[number];

/** What an API token may be used for. A session carries every scope; roles still apply. */
export const scopes = [
  'apps:read',
  'apps:write',
  'approvals:write',
  'audit:read',
  'tokens:write',
  'policies:write',
  // Using apps through the gateway (`{app}.apps…`) with the token: a token for the audit trail or CI
  // should not also be a key to every app its owner may use.
  'apps:use',
] as const;
export type Scope = (typeof scopes)[number];

/**
 * An AI agent acting for the person a principal names, under a delegation that person consented to
 * (RFC 8693's `act` claim is the model): every audit event it causes names both.
 */
export type AgentActor = {
  delegationId: string;
  client: string;
  version: string | null;
  /** The model the agent declared when it registered; null when it declared none. */
  model: string | null;
};

/** The authenticated caller of a request. */
export type Principal = {
  userId: string;
  email: string;
  name: string;
  department: string | null;
  roles: Role[];
  specialties: Specialty[];
  scopes: Scope[];
  via:
    | { kind: 'session'; csrfToken: string }
    | { kind: 'token'; tokenId: string }
    | { kind: 'agent'; delegationId: string };
  /** Set when an agent acts for this person (only through the MCP endpoint). */
  agent?: AgentActor;
};

export const hasRole = (p: Principal, ...wanted: Role[]) => wanted.some((r) => p.roles.includes(r));
