import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Lifecycle, offboarding, builds, egress, connectors, environments, logs and the audit checkpoints.
// Shipped: never edit one, add the next (../migrations.ts lists every file).
export const governance: Record<string, (dialect: Dialect) => Migration> = {
  '0010_lifecycle': () => ({
    async up(db: AnyDb) {
      // When each app was last used: kept by the usage writer, so the inactivity job reads one row per
      // app instead of scanning every request ever made.
      await db.schema
        .createTable('app_activity')
        .addColumn('app_id', 'text', (c) => c.primaryKey().references('apps.id'))
        .addColumn('last_used_at', 'text', (c) => c.notNull())
        .execute();
      await sql`insert into app_activity (app_id, last_used_at) select app_id, max(at) from app_usage group by app_id`.execute(
        db,
      );
      await db.schema
        .createTable('app_lifecycle')
        .addColumn('app_id', 'text', (c) => c.primaryKey().references('apps.id'))
        .addColumn('stage', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('stage_at', 'text', (c) => c.notNull())
        .addColumn('next_step_at', 'text')
        .addColumn('active_since', 'text', (c) => c.notNull())
        .addColumn('renewed_at', 'text')
        .addColumn('expiry_notices', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('exempt_reason', 'text')
        .addColumn('exempt_by', 'text')
        .addColumn('renewal_requested', 'text')
        .addColumn('resume_deployment', 'text')
        .addColumn('archive_id', 'text')
        .execute();
      await db.schema
        .createTable('app_archives')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('bytes', 'integer', (c) => c.notNull())
        .addColumn('kek_id', 'text', (c) => c.notNull())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('secret_names', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('restored_at', 'text')
        .addColumn('purged_at', 'text')
        .execute();
      await db.schema
        .createTable('jobs')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('every_seconds', 'integer', (c) => c.notNull())
        .addColumn('next_run_at', 'text', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('runs', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_started_at', 'text')
        .addColumn('last_finished_at', 'text')
        .addColumn('last_result', 'text')
        .addColumn('last_error', 'text')
        .execute();
      await db.schema
        .createTable('notifications')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('recipient', 'text', (c) => c.notNull())
        .addColumn('app', 'text')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('action', 'text')
        .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('read_at', 'text')
        .execute();
      await db.schema
        .createIndex('notifications_recipient_idx')
        .on('notifications')
        .columns(['recipient', 'created_at'])
        .execute();
      await db.schema
        .createTable('notification_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('notification_id', 'text', (c) => c.notNull().references('notifications.id'))
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        .addColumn('delivered_at', 'text')
        .addColumn('failed_at', 'text')
        .addColumn('last_error', 'text')
        .execute();
      await db.schema
        .createIndex('notification_deliveries_due_idx')
        .on('notification_deliveries')
        .columns(['delivered_at', 'next_attempt_at'])
        .execute();
      await db.schema
        .createTable('advisory_alerts')
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('advisory', 'text', (c) => c.notNull())
        .addColumn('package', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('advisory_alerts_pk', ['app_id', 'version', 'advisory', 'package'])
        .execute();
      // Small platform-wide values, such as a --dev server's clock offset (kept across restarts).
      await db.schema
        .createTable('platform_settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
      // The owner's manager, from the IdP: who hears about an app its owner does not answer for.
      await db.schema.alterTable('users').addColumn('manager', 'text').execute();
    },
  }),
  '0011_offboarding': () => ({
    async up(db: AnyDb) {
      // An admin disables someone who left: their credentials stop, and their apps go to their manager.
      await db.schema.alterTable('users').addColumn('disabled_at', 'text').execute();
      await db.schema.alterTable('app_lifecycle').addColumn('offered_to', 'text').execute();
      // The engineering team an app graduated to: it leaves the micro-app limits (inactivity, expiry).
      await db.schema.alterTable('app_lifecycle').addColumn('graduated_to', 'text').execute();
      // Per-person choices about notifications beyond the inbox (which always holds everything).
      await db.schema
        .createTable('notification_preferences')
        .addColumn('email', 'text', (c) => c.primaryKey())
        .addColumn('by_email', 'integer', (c) => c.notNull())
        .addColumn('digest', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // The SLO job reads the last hour of every app's requests.
      await db.schema.createIndex('app_usage_at_idx').on('app_usage').column('at').execute();
    },
  }),
  '0012_builds': () => ({
    async up(db: AnyDb) {
      // Builds the platform runs itself (the console's Deploy, `microapp build`): the same pipeline as
      // `microapp ci`, sandboxed, with every step's outcome kept for whoever watches.
      await db.schema
        .createTable('builds')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('settings', 'text', (c) => c.notNull())
        .addColumn('deploy', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('steps', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('digest', 'text')
        .addColumn('error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .execute();
      await db.schema.createIndex('builds_app_idx').on('builds').columns(['app_id', 'created_at']).execute();
      await db.schema.createIndex('builds_state_idx').on('builds').column('state').execute();
    },
  }),
  '0013_egress': () => ({
    async up(db: AnyDb) {
      // Every attempt an app makes to reach the outside through the broker: allowed, denied, blocked by DLP.
      await db.schema
        .createTable('app_egress')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('bytes_out', 'bigint', (c) => c.notNull())
        .addColumn('bytes_in', 'bigint', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('app_egress_app_at_idx')
        .on('app_egress')
        .columns(['app_id', 'at'])
        .execute();
    },
  }),
  '0014_connectors': () => ({
    async up(db: AnyDb) {
      // Company systems apps reach through the broker, which adds the credential (sealed under the KEK).
      await db.schema
        .createTable('connectors')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('base_url', 'text', (c) => c.notNull())
        .addColumn('auth_header', 'text', (c) => c.notNull())
        .addColumn('methods', 'text', (c) => c.notNull())
        .addColumn('paths', 'text', (c) => c.notNull())
        .addColumn('data_classes', 'text', (c) => c.notNull())
        .addColumn('kek_id', 'text')
        .addColumn('wrapped_key', 'text')
        .addColumn('ciphertext', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  }),
  '0015_environments': () => ({
    async up(db: AnyDb) {
      // Each deployment runs in an environment: `preview` (owner and reviewers) or `live` (the audience).
      await db.schema
        .alterTable('deployments')
        .addColumn('env', 'text', (c) => c.notNull().defaultTo('live'))
        .execute();
    },
  }),
  '0016_database_credentials': () => ({
    async up(db: AnyDb) {
      // A connector is an HTTP service or a PostgreSQL database; a database connector has grants instead of
      // methods and paths, and its apps get a role of their own per instance (a lease), never its credential.
      await db.schema
        .alterTable('connectors')
        .addColumn('kind', 'text', (c) => c.notNull().defaultTo('http'))
        .execute();
      await db.schema.alterTable('connectors').addColumn('grants', 'text').execute();
      await db.schema
        .createTable('database_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('deployment_id', 'text', (c) => c.notNull())
        .addColumn('connector_id', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema
        .createIndex('database_credentials_state')
        .on('database_credentials')
        .columns(['state', 'expires_at'])
        .execute();
    },
  }),
  '0017_app_logs': (dialect) => ({
    async up(db: AnyDb) {
      // What app instances print, redacted of their secrets, kept per the app's tier (see app-logs.ts).
      await db.schema
        .createTable('app_logs')
        .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('env', 'text', (c) => c.notNull())
        .addColumn('deployment_id', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('line', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('app_logs_app').on('app_logs').columns(['app_id', 'env', 'seq']).execute();
      await db.schema.createIndex('app_logs_at').on('app_logs').columns(['at']).execute();
    },
  }),
  '0018_vault_leases': () => ({
    async up(db: AnyDb) {
      // A database role Vault issued is renewed and revoked through its lease, not by the platform's own SQL.
      await db.schema.alterTable('database_credentials').addColumn('vault_lease_id', 'text').execute();
    },
  }),
  '0019_apps_use_scope': () => ({
    async up(db: AnyDb) {
      // Using apps through the gateway became a scope of its own. Tokens created with every scope there was
      // (the CLI's sign-in token, tokens made without --scope) keep what they could do; a token narrowed to
      // some scopes does not gain it.
      const everything = JSON.stringify(
        ['apps:read', 'apps:write', 'approvals:write', 'audit:read', 'policies:write', 'tokens:write'].sort(),
      );
      const withUse = JSON.stringify(
        [
          'apps:read',
          'apps:use',
          'apps:write',
          'approvals:write',
          'audit:read',
          'policies:write',
          'tokens:write',
        ].sort(),
      );
      await sql`update api_tokens set scopes = ${withUse} where scopes = ${everything}`.execute(db);
    },
  }),
  '0020_build_tokens': () => ({
    async up(db: AnyDb) {
      // The token a platform build acts with: a version published with it was built by the platform.
      await db.schema.alterTable('builds').addColumn('token_id', 'text').execute();
      await db.schema.createIndex('builds_token').on('builds').column('token_id').execute();
    },
  }),
  '0021_audit_checkpoints': () => ({
    async up(db: AnyDb) {
      // Signed checkpoints of the audit chain (see audit-checkpoints.ts); the key is not in the database.
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('head', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('keyid', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .execute();
    },
  }),
  '0022_advisories_by_id': () => ({
    async up(db: AnyDb) {
      // An import merges into the latest snapshot by record id (advisory-import.ts).
      await db.schema
        .createIndex('advisories_by_id')
        .on('advisories')
        .columns(['snapshot_id', 'osv_id'])
        .execute();
    },
  }),
  '0023_scan_exception_revocation': () => ({
    async up(db: AnyDb) {
      // An exception can be ended before it expires (scan-exceptions.ts).
      await db.schema.alterTable('scan_exceptions').addColumn('revoked_at', 'text').execute();
      await db.schema.alterTable('scan_exceptions').addColumn('revoked_by', 'text').execute();
    },
  }),
};
