// The API's own types: the console reads the shapes the server declares, never a copy of them.

export type { AuditEvent, VerifyResult } from '../../server/src/modules/audit/audit-service.ts';
export type { AppSummary, AppView, ReviewView } from '../../server/src/modules/catalog/app-view.ts';
export type { Assessment, RevisionView } from '../../server/src/modules/catalog/catalog-service.ts';
export type { Manifest } from '../../server/src/modules/catalog/manifest-schema.ts';
export type { LifecycleView } from '../../server/src/modules/lifecycle/lifecycle-service.ts';
export type { RiskInput } from '../../server/src/modules/risk/risk-evaluator.ts';

/** GET /api/v1/auth/session */
export type Session = {
  user: { id: string; email: string; name: string; department: string | null; roles: string[] };
  via: string;
  csrfToken: string | null;
};

export type { Finding } from '../../server/src/modules/advisories/advisory-service.ts';
export type { ExceptionView } from '../../server/src/modules/advisories/scan-exceptions.ts';
export { dataClasses } from '../../server/src/modules/catalog/data-classes.ts';
export type { UsageSummary } from '../../server/src/modules/usage/usage-service.ts';

/** GET /api/v1/apps/{name}/versions, one item. */
export type VersionItem = {
  app: string;
  version: string;
  digest: string;
  publishedBy: string;
  publishedAt: string;
  scan: {
    passed: boolean;
    findings: import('../../server/src/modules/advisories/advisory-service.ts').Finding[];
    advisories: string;
  };
  sbomComponents: number;
  agentSession: import('../../server/src/modules/agents/agent-session.ts').AgentSessionReference | null;
};
export type { CheckpointView } from '../../server/src/modules/agents/checkpoint-service.ts';
export type { DelegationView } from '../../server/src/modules/agents/delegation-types.ts';
export type { BuildStep, BuildView } from '../../server/src/modules/builds/build-service.ts';
export type { FormField } from '../../server/src/modules/builds/form-fields.ts';
export type { TemplateInfo } from '../../server/src/modules/catalog/templates.ts';
export type { ConnectorView } from '../../server/src/modules/connectors/connector-service.ts';
export type { JobView } from '../../server/src/modules/jobs/job-runner.ts';
export type { Overview } from '../../server/src/modules/lifecycle/overview.ts';
export type { NotificationView } from '../../server/src/modules/notifications/notification-service.ts';
export type { ChangeView } from '../../server/src/modules/repos/change-view.ts';
export type { RepositoryView } from '../../server/src/modules/repos/repo-service.ts';
