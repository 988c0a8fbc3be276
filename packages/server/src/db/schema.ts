/** Tables and columns, shared by both dialects. JSON is stored as text, timestamps as ISO-8601 UTC text. */
export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  login_requests: LoginRequestsTable;
  cli_codes: CliCodesTable;
  app_codes: AppCodesTable;
  api_tokens: ApiTokensTable;
  apps: AppsTable;
  app_data_classes: AppDataClassesTable;
  risk_assessments: RiskAssessmentsTable;
  review_decisions: ReviewDecisionsTable;
  audit_events: AuditEventsTable;
  policy_bundles: PolicyBundlesTable;
  decision_log: DecisionLogTable;
  advisory_snapshots: AdvisorySnapshotsTable;
  advisories: AdvisoriesTable;
  scan_exceptions: ScanExceptionsTable;
  signing_keys: SigningKeysTable;
  app_versions: AppVersionsTable;
  app_secrets: AppSecretsTable;
  deployments: DeploymentsTable;
  app_usage: AppUsageTable;
}

export interface AppCodesTable {
  code_hash: string;
  user_id: string;
  app: string;
  state: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface AppUsageTable {
  id: string;
  app_id: string;
  version: string;
  user_email: string;
  method: string;
  status: number;
  latency_ms: number;
  bytes_in: number;
  bytes_out: number;
  at: string;
}

export interface DeploymentsTable {
  id: string;
  app_id: string;
  version: string;
  digest: string;
  state: string;
  started_by: string;
  started_at: string;
  stopped_at: string | null;
}

export interface AppSecretsTable {
  app_id: string;
  name: string;
  version: number;
  kek_id: string;
  wrapped_key: string;
  ciphertext: string;
  updated_by: string;
  updated_at: string;
}

export interface SigningKeysTable {
  keyid: string;
  public_pem: string;
  encrypted_private: string;
  status: string;
  created_at: string;
  retired_at: string | null;
}

export interface AppVersionsTable {
  id: string;
  app_id: string;
  version: string;
  digest: string;
  sbom: string;
  scan: string;
  bundles: string;
  provenance: string;
  created_by: string;
  created_at: string;
}

export interface AdvisorySnapshotsTable {
  id: string;
  digest: string;
  records: number;
  imported_by: string;
  imported_at: string;
}

export interface AdvisoriesTable {
  snapshot_id: string;
  osv_id: string;
  package: string;
  record: string;
}

export interface ScanExceptionsTable {
  id: string;
  app_name: string;
  advisory: string;
  package: string;
  reason: string;
  expires_at: string;
  approved_by: string;
  created_at: string;
}

export interface PolicyBundlesTable {
  id: string;
  revision: number;
  modules: string;
  data: string;
  digest: string;
  message: string | null;
  created_by: string;
  created_at: string;
}

export interface DecisionLogTable {
  id: string;
  at: string;
  entrypoint: string;
  revision: string;
  input_digest: string;
  result: string;
  duration_ms: number;
  subject: string | null;
  request_id: string | null;
}

export interface UsersTable {
  id: string;
  subject: string;
  email: string;
  name: string;
  department: string | null;
  roles: string;
  specialties: string;
  created_at: string;
  last_login_at: string | null;
}

export interface SessionsTable {
  id_hash: string;
  user_id: string;
  csrf_token: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  /** Set for a session that signs in to one app's host only; null for a platform session. */
  app: string | null;
}

export interface LoginRequestsTable {
  state: string;
  code_verifier: string;
  nonce: string;
  return_to: string;
  cli_redirect: string | null;
  cli_challenge: string | null;
  cli_state: string | null;
  created_at: string;
  expires_at: string;
}

export interface CliCodesTable {
  code_hash: string;
  user_id: string;
  challenge: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  scopes: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface AppsTable {
  id: string;
  name: string;
  owner: string;
  registered_by: string;
  department: string | null;
  state: string;
  tier: string;
  revision: number;
  manifest: string;
  assessment_id: string;
  required_reviews: string;
  created_at: string;
  updated_at: string;
}

export interface AppDataClassesTable {
  app_id: string;
  data_class: string;
}

export interface RiskAssessmentsTable {
  id: string;
  app_id: string;
  revision: number;
  score: number;
  tier: string;
  factors: string;
  inputs: string;
  rules_version: string;
  created_at: string;
}

export interface ReviewDecisionsTable {
  id: string;
  app_id: string;
  revision: number;
  reviewer_id: string;
  reviewer_email: string;
  specialty: string | null;
  decision: string;
  comment: string | null;
  created_at: string;
}

export interface AuditEventsTable {
  seq: number | string;
  id: string;
  occurred_at: string;
  actor: string;
  action: string;
  target_type: string;
  target: string;
  reason: string | null;
  request_id: string | null;
  source_ip: string | null;
  summary: string;
  prev_hash: string;
  hash: string;
}
