import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// The first migrations: people, apps and their reviews, policy, advisories, signing, secrets, deployments
// and usage. Shipped: never edit one, add the next (../migrations.ts lists every file).
export const foundation: Record<string, (dialect: Dialect) => Migration> = {
  '0001_foundation': (dialect) => ({
    async up(db: AnyDb) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('subject', 'text', (c) => c.notNull().unique())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('department', 'text')
        .addColumn('roles', 'text', (c) => c.notNull())
        .addColumn('specialties', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_login_at', 'text')
        .execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id_hash', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('csrf_token', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();

      await db.schema
        .createTable('login_requests')
        .addColumn('state', 'text', (c) => c.primaryKey())
        .addColumn('code_verifier', 'text', (c) => c.notNull())
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('return_to', 'text', (c) => c.notNull())
        .addColumn('cli_redirect', 'text')
        .addColumn('cli_challenge', 'text')
        .addColumn('cli_state', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('cli_codes')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('challenge', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();

      await db.schema
        .createTable('apps')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('registered_by', 'text', (c) => c.notNull())
        .addColumn('department', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('tier', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('assessment_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      for (const column of ['owner', 'department', 'tier', 'state']) {
        await db.schema.createIndex(`apps_${column}_idx`).on('apps').column(column).execute();
      }

      await db.schema
        .createTable('app_data_classes')
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('data_class', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('app_data_classes_pk', ['app_id', 'data_class'])
        .execute();
      await db.schema
        .createIndex('app_data_classes_class_idx')
        .on('app_data_classes')
        .column('data_class')
        .execute();

      await db.schema
        .createTable('risk_assessments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('score', 'integer', (c) => c.notNull())
        .addColumn('tier', 'text', (c) => c.notNull())
        .addColumn('factors', 'text', (c) => c.notNull())
        .addColumn('inputs', 'text', (c) => c.notNull())
        .addColumn('rules_version', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('review_decisions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('reviewer_id', 'text', (c) => c.notNull())
        .addColumn('reviewer_email', 'text', (c) => c.notNull())
        .addColumn('specialty', 'text')
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('comment', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('review_decisions_app_idx')
        .on('review_decisions')
        .columns(['app_id', 'revision'])
        .execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('occurred_at', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('request_id', 'text')
        .addColumn('source_ip', 'text')
        .addColumn('summary', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('audit_events_target_idx')
        .on('audit_events')
        .columns(['target_type', 'target'])
        .execute();
      await db.schema.createIndex('audit_events_time_idx').on('audit_events').column('occurred_at').execute();

      // The audit table is append-only at the database level, not only in our code.
      if (dialect === 'sqlite') {
        await sql`CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
          BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END`.execute(db);
        await sql`CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
          BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END`.execute(db);
      } else {
        await sql`CREATE FUNCTION microapp_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$`.execute(db);
        await sql`CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
          FOR EACH ROW EXECUTE FUNCTION microapp_audit_append_only()`.execute(db);
        await sql`CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
          FOR EACH STATEMENT EXECUTE FUNCTION microapp_audit_append_only()`.execute(db);
      }
    },
  }),
  '0002_policy': () => ({
    async up(db: AnyDb) {
      await db.schema
        .createTable('policy_bundles')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('revision', 'integer', (c) => c.notNull().unique())
        .addColumn('modules', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('decision_log')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('entrypoint', 'text', (c) => c.notNull())
        .addColumn('revision', 'text', (c) => c.notNull())
        .addColumn('input_digest', 'text', (c) => c.notNull())
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('duration_ms', 'real', (c) => c.notNull())
        .addColumn('subject', 'text')
        .addColumn('request_id', 'text')
        .execute();
      await db.schema
        .createIndex('decision_log_subject_idx')
        .on('decision_log')
        .columns(['subject', 'at'])
        .execute();
      await db.schema
        .alterTable('apps')
        .addColumn('required_reviews', 'text', (c) => c.notNull().defaultTo('[]'))
        .execute();
    },
  }),
  '0003_advisories': () => ({
    async up(db: AnyDb) {
      await db.schema
        .createTable('advisory_snapshots')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('records', 'integer', (c) => c.notNull())
        .addColumn('imported_by', 'text', (c) => c.notNull())
        .addColumn('imported_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('advisories')
        .addColumn('snapshot_id', 'text', (c) => c.notNull().references('advisory_snapshots.id'))
        .addColumn('osv_id', 'text', (c) => c.notNull())
        .addColumn('package', 'text', (c) => c.notNull())
        .addColumn('record', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('advisories_pk', ['snapshot_id', 'package', 'osv_id'])
        .execute();
      await db.schema
        .createTable('scan_exceptions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('advisory', 'text', (c) => c.notNull())
        .addColumn('package', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('approved_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('scan_exceptions_app_idx')
        .on('scan_exceptions')
        .column('app_name')
        .execute();
    },
  }),
  '0004_signing': () => ({
    async up(db: AnyDb) {
      await db.schema
        .createTable('signing_keys')
        .addColumn('keyid', 'text', (c) => c.primaryKey())
        .addColumn('public_pem', 'text', (c) => c.notNull())
        .addColumn('encrypted_private', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('retired_at', 'text')
        .execute();
      await db.schema
        .createTable('app_versions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('sbom', 'text', (c) => c.notNull())
        .addColumn('scan', 'text', (c) => c.notNull())
        .addColumn('bundles', 'text', (c) => c.notNull())
        .addColumn('provenance', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('app_versions_app_version', ['app_id', 'version'])
        .execute();
    },
  }),
  '0005_secrets': () => ({
    async up(db: AnyDb) {
      await db.schema
        .createTable('app_secrets')
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('kek_id', 'text', (c) => c.notNull())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('ciphertext', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('app_secrets_pk', ['app_id', 'name'])
        .execute();
    },
  }),
  '0006_deployments': () => ({
    async up(db: AnyDb) {
      await db.schema
        .createTable('deployments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('started_by', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('stopped_at', 'text')
        .execute();
      await db.schema
        .createIndex('deployments_app_idx')
        .on('deployments')
        .columns(['app_id', 'state'])
        .execute();
    },
  }),
  '0007_usage': () => ({
    async up(db: AnyDb) {
      // One row per request the gateway forwarded: what inactivity detection and dashboards read.
      // No path or query: those can carry personal data, and usage needs neither.
      await db.schema
        .createTable('app_usage')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('user_email', 'text', (c) => c.notNull())
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('status', 'integer', (c) => c.notNull())
        .addColumn('latency_ms', 'integer', (c) => c.notNull())
        .addColumn('bytes_in', 'integer', (c) => c.notNull())
        .addColumn('bytes_out', 'integer', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('app_usage_app_at_idx').on('app_usage').columns(['app_id', 'at']).execute();
    },
  }),
  '0008_one_current_signing_key': () => ({
    async up(db: AnyDb) {
      // Two replicas starting at once could each create a current signing key; the database now lets
      // only one win, and the loser reads the winner's key.
      await db.schema
        .createIndex('signing_keys_one_current')
        .on('signing_keys')
        .column('status')
        .unique()
        .where(sql.ref('status'), '=', 'current')
        .execute();
    },
  }),
  '0009_app_sign_in': () => ({
    async up(db: AnyDb) {
      // A session bound to one app's host: valid at that app's gateway only, never on the platform API.
      await db.schema.alterTable('sessions').addColumn('app', 'text').execute();
      await db.schema
        .createTable('app_codes')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('app', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
    },
  }),
};
