import type { Generated } from 'kysely';
import type { AgentTables } from './schema-agents.ts';
import type { RepoTables } from './schema-repos.ts';

/** Tables and columns, shared by both dialects. JSON is stored as text, timestamps as ISO-8601 UTC text. */
export interface Database extends AgentTables, RepoTables {
  users: UsersTable;
  replicas: ReplicasTable;
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
  audit_queue: AuditQueueTable;
  audit_checkpoints: AuditCheckpointsTable;
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
  app_activity: AppActivityTable;
  app_lifecycle: AppLifecycleTable;
  cluster_routes: ClusterRoutesTable;
  app_archives: AppArchivesTable;
  jobs: JobsTable;
  notifications: NotificationsTable;
  notification_deliveries: NotificationDeliveriesTable;
  advisory_alerts: AdvisoryAlertsTable;
  platform_settings: PlatformSettingsTable;
  notification_preferences: NotificationPreferencesTable;
  builds: BuildsTable;
  app_egress: AppEgressTable;
  connectors: ConnectorsTable;
  database_credentials: DatabaseCredentialsTable;
  app_logs: AppLogsTable;
}

/** One line an app instance printed, with its secrets redacted. */
export interface AppLogsTable {
  seq: Generated<number>;
  app_id: string;
  env: string;
  deployment_id: string;
  version: string;
  /** stdout or stderr */
  stream: string;
  line: string;
  at: string;
}

export interface ConnectorsTable {
  id: string;
  base_url: string;
  auth_header: string;
  /** JSON arrays */
  methods: string;
  paths: string;
  data_classes: string;
  /** The sealed credential (envelope under the KEK); null when none is set. */
  kek_id: string | null;
  wrapped_key: string | null;
  ciphertext: string | null;
  created_at: string;
  updated_by: string;
  updated_at: string;
  /** `http`, or `postgres` for a database connector. */
  kind: string;
  /** A database connector's grants: JSON `{ privileges, tables, leaseMinutes }`; null for HTTP. */
  grants: string | null;
  /** `openai` or `anthropic` when the connector is a model API (migration 0028); null otherwise. */
  model_api?: string | null;
}

/** A PostgreSQL role the platform created for one app instance (a lease), until it is dropped. */
export interface DatabaseCredentialsTable {
  id: string;
  app_id: string;
  deployment_id: string;
  connector_id: string;
  role: string;
  /** issued, revoked */
  state: string;
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
  /** Set when Vault's database secrets engine issued the role: renewed and revoked through this lease. */
  vault_lease_id: string | null;
}

export interface AppEgressTable {
  id: string;
  app_id: string;
  host: string;
  method: string;
  /** allowed, denied, blocked_dlp, failed */
  decision: string;
  status: number;
  bytes_out: number;
  bytes_in: number;
  at: string;
  /** A call to a model API: the model it named, and the tokens the answer says it used. */
  model?: string | null;
  tokens_in?: number | null;
  tokens_out?: number | null;
}

export interface BuildsTable {
  id: string;
  app_id: string;
  app_name: string;
  requested_by: string;
  /** 'template' (scaffolded by the platform) or 'upload' (a source archive). */
  source: string;
  /** JSON: the form builder's fields, for a template build. */
  settings: string;
  /** 1 when the build deploys its version once it passes. */
  deploy: number;
  /** queued, running, passed, failed */
  state: string;
  /** JSON: the pipeline's steps as they finish. */
  steps: string;
  version: string | null;
  digest: string | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** The token the build acts with while it runs (a version published with it was built by the platform). */
  token_id: string | null;
  /** The replica that runs it (replicas.id); null on builds from before replicas had names. */
  replica_id: string | null;
}

export interface NotificationPreferencesTable {
  email: string;
  /** 1: also by e-mail (the default when no row exists); 0: inbox (and webhook) only. */
  by_email: number;
  /** 1: the reviewers' daily digest; 0: none. */
  digest: number;
  updated_at: string;
}

export interface PlatformSettingsTable {
  key: string;
  value: string;
}

export interface AppActivityTable {
  app_id: string;
  last_used_at: string;
}

export interface AppLifecycleTable {
  app_id: string;
  /** active | warned | stopped | escalated | decommissioned */
  stage: string;
  /** Why the app left `active`: inactive | expired; null while active. */
  reason: string | null;
  stage_at: string;
  /** When the next step falls due (stop, escalate, decommission, purge the archive). */
  next_step_at: string | null;
  /** Where inactivity is counted from when the app was never used since: creation, renewal or restore. */
  active_since: string;
  renewed_at: string | null;
  /** Days-before-expiry notices already sent for the current expiry date, e.g. "30,7". */
  expiry_notices: string;
  exempt_reason: string | null;
  exempt_by: string | null;
  /** JSON of a high-tier renewal waiting for a reviewer. */
  renewal_requested: string | null;
  /** The deployment that was current when the app was stopped, to resume on renewal or restore. */
  resume_deployment: string | null;
  archive_id: string | null;
  /** Whom the app was offered to when its owner left (their manager), until someone takes it. */
  offered_to: string | null;
  /** The engineering team the app graduated to; graduated apps are out of inactivity and expiry. */
  graduated_to: string | null;
}

export interface AppArchivesTable {
  id: string;
  app_id: string;
  path: string;
  digest: string;
  bytes: number;
  kek_id: string;
  wrapped_key: string;
  secret_names: string;
  created_at: string;
  expires_at: string;
  restored_at: string | null;
  purged_at: string | null;
}

export interface JobsTable {
  name: string;
  every_seconds: number;
  next_run_at: string;
  lease_owner: string | null;
  lease_until: string | null;
  runs: number;
  last_started_at: string | null;
  last_finished_at: string | null;
  last_result: string | null;
  last_error: string | null;
}

export interface NotificationsTable {
  id: string;
  recipient: string;
  app: string | null;
  kind: string;
  subject: string;
  body: string;
  action: string | null;
  /** One notification per event, however often a job that creates it runs. */
  dedupe_key: string;
  created_at: string;
  read_at: string | null;
}

export interface NotificationDeliveriesTable {
  id: string;
  notification_id: string;
  channel: string;
  attempts: number;
  next_attempt_at: string;
  delivered_at: string | null;
  failed_at: string | null;
  last_error: string | null;
}

export interface AdvisoryAlertsTable {
  app_id: string;
  version: string;
  advisory: string;
  package: string;
  severity: string;
  created_at: string;
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
  /** live or preview */
  env: string;
  version: string;
  digest: string;
  state: string;
  started_by: string;
  started_at: string;
  stopped_at: string | null;
  /** The replica whose runtime runs it (replicas.id); null on deployments from before replicas had names. */
  replica_id: string | null;
}

/** What the Kubernetes driver last rendered for an app's environment, where the gateway forwards (0032). */
export interface ClusterRoutesTable {
  app_id: string;
  env: string;
  version: string;
  digest: string;
  namespace: string;
  rendered_by: string;
  rendered_at: string;
}

/** A running server and its lease (migration 0030). */
export interface ReplicasTable {
  id: string;
  started_at: string;
  lease_until: string;
  version: string;
  /** Where the other replicas reach this one (MICROAPP_REPLICA_URL); null until it listens. */
  url: string | null;
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
  revoked_at: string | null;
  revoked_by: string | null;
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
  manager: string | null;
  /** Set when an admin disabled the account: sign-in, sessions and tokens stop working. */
  disabled_at: string | null;
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
  /** The registration's whole manifest (0033; null for revisions registered before it). */
  manifest: string | null;
  /** When this revision's approval was complete: by policy, carried over, or the last review needed (0033). */
  approved_at: string | null;
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

/** A signed checkpoint of the audit chain: its length and head hash at a time. */
export interface AuditCheckpointsTable {
  seq: number | string;
  head: string;
  at: string;
  keyid: string;
  signature: string;
}

/** Events committed with their change and not yet in the chain (audit-service.ts sequences them). */
export interface AuditQueueTable {
  position: Generated<number>;
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
