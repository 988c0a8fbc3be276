import type { Kysely } from 'kysely';
import type { Clock } from './clock.ts';
import type { ServerConfig } from './config.ts';
import type { Database } from './db/schema.ts';
import { createAdvisoryAlerts } from './modules/advisories/advisory-alerts.ts';
import type { AdvisoryService } from './modules/advisories/advisory-service.ts';
import type { ApprovalService } from './modules/approvals/approval-service.ts';
import { createReviewDigest } from './modules/approvals/review-digest.ts';
import type { AuditCheckpoints } from './modules/audit/audit-checkpoints.ts';
import type { AuditService } from './modules/audit/audit-service.ts';
import { createSiemExport } from './modules/audit/siem-export.ts';
import type { DatabaseCredentials } from './modules/connectors/database-credentials.ts';
import { createEgressAlerts } from './modules/egress/egress-alerts.ts';
import type { JobRunner } from './modules/jobs/job-runner.ts';
import type { LifecycleService } from './modules/lifecycle/lifecycle-service.ts';
import type { NotificationService } from './modules/notifications/notification-service.ts';
import type { AppLogs } from './modules/runtime/app-logs.ts';
import { createSloAlerts } from './modules/usage/slo-alerts.ts';
import type { UsageService } from './modules/usage/usage-service.ts';

/** The platform's scheduled jobs: lifecycle, retention, alerts, digests, audit checkpoints, deliveries. */
export async function registerPlatformJobs(
  jobs: Pick<JobRunner, 'register'>,
  deps: {
    config: ServerConfig;
    db: Kysely<Database>;
    clock: Clock;
    audit: AuditService;
    advisories: AdvisoryService;
    notifications: NotificationService;
    lifecycle: LifecycleService;
    usage: UsageService;
    appLogs: AppLogs;
    credentials: DatabaseCredentials;
    approvals: ApprovalService;
    checkpoints: AuditCheckpoints;
  },
) {
  const { config, db, clock, audit, advisories, notifications, lifecycle, usage, appLogs, credentials } =
    deps;
  const { approvals, checkpoints } = deps;
  const alerts = createAdvisoryAlerts({ db: db, clock, audit, advisories, notifications });
  await jobs.register({
    name: 'lifecycle',
    everySeconds: config.jobs.lifecycleHours * 3600,
    run: (ctx) => lifecycle.runJob(ctx),
  });
  await jobs.register({
    name: 'usage-retention',
    everySeconds: 86_400,
    run: () => usage.prune(config.usageRetentionDays),
  });
  const slo = createSloAlerts({ db: db, clock, notifications, flush: () => usage.flush() });
  await jobs.register({
    name: 'log-retention',
    everySeconds: 86_400,
    run: async () => ({ deleted: await appLogs.prune() }),
  });
  await jobs.register({
    name: 'database-credentials',
    everySeconds: 60,
    run: async () => ({ revoked: await credentials.revokeExpired() }),
  });
  await jobs.register({ name: 'slo-alerts', everySeconds: 300, run: () => slo.run() });
  const egressAlerts = createEgressAlerts({ db: db, clock, notifications });
  await jobs.register({ name: 'egress-volume-alerts', everySeconds: 900, run: () => egressAlerts.run() });
  const digest = createReviewDigest({ db: db, clock, approvals, notifications });
  await jobs.register({ name: 'review-digest', everySeconds: 86_400, run: () => digest.run() });
  await jobs.register({ name: 'advisory-alerts', everySeconds: 3600, run: () => alerts.run() });
  if (config.siemSyslog) {
    const siem = createSiemExport({
      db: db,
      audit,
      target: config.siemSyslog,
      checkpoint: () => checkpoints.make(),
    });
    await jobs.register({ name: 'siem-export', everySeconds: 30, run: () => siem.run() });
  }
  await jobs.register({
    name: 'audit-checkpoint',
    everySeconds: 60,
    run: async () => ({ seq: (await checkpoints.make())?.seq ?? null }),
  });
  await jobs.register({
    name: 'notifications',
    everySeconds: 60,
    run: () => notifications.deliverDue(),
  });
}
