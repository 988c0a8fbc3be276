/** The tables of AI agents acting for people (migration 0027), part of `Database` (schema.ts). */
export interface AgentTables {
  agent_clients: AgentClientsTable;
  agent_delegations: AgentDelegationsTable;
  agent_codes: AgentCodesTable;
  agent_tokens: AgentTokensTable;
  agent_checkpoints: AgentCheckpointsTable;
  agent_calls: AgentCallsTable;
}

/** An MCP client as it registered itself (RFC 7591); public, so it has no secret. */
export interface AgentClientsTable {
  id: string;
  name: string;
  version: string | null;
  model: string | null;
  /** JSON array of the exact redirect URIs the client may use. */
  redirect_uris: string;
  created_at: string;
}

/** A person's consent that an agent acts for them, within scopes and limits, until it expires or is revoked. */
export interface AgentDelegationsTable {
  id: string;
  user_id: string;
  client_id: string;
  client_name: string;
  client_version: string | null;
  model: string | null;
  /** JSON array of scopes. */
  scopes: string;
  /** JSON DelegationLimits. */
  limits: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  revoked_by: string | null;
}

export interface AgentCodesTable {
  code_hash: string;
  delegation_id: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  expires_at: string;
  used_at: string | null;
}

export interface AgentTokensTable {
  token_hash: string;
  delegation_id: string;
  kind: 'access' | 'refresh';
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface AgentCheckpointsTable {
  id: string;
  delegation_id: string;
  user_id: string;
  tool: string;
  app: string | null;
  /** The tool call's arguments, canonical JSON, shown to the person as what will happen. */
  input: string;
  input_digest: string;
  /** JSON array of the policy's reasons for asking. */
  reasons: string;
  state: 'pending' | 'approved' | 'refused' | 'expired' | 'used';
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  decided_by: string | null;
  note: string | null;
}

export interface AgentCallsTable {
  id: string;
  delegation_id: string;
  at: string;
  tool: string;
  app: string | null;
  /** `running` while the call runs (a build), then what came of it. */
  outcome: 'running' | 'done' | 'refused' | 'waiting' | 'failed';
  reason: string | null;
  checkpoint_id: string | null;
  /** What the agent said it was asked, redacted and cut to size; null when it attached nothing. */
  prompt: string | null;
  input_digest: string;
  output_digest: string;
}
