import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Shipped: never edit one, add the next (../migrations.ts lists every file).

export const revisionAnswers: Record<string, (_dialect: Dialect) => Migration> = {
  '0033_revision_answers': () => ({
    async up(db: AnyDb) {
      // Each registration keeps the answers it was given (the whole manifest, not only what the risk rules
      // read) and when its approval was complete: "what changed" then covers the purpose and the lifetime,
      // and compares with a revision that was approved, not one a reviewer merely approved half of.
      // Nullable columns only: older servers run on beside it (schema compatibility unchanged).
      await db.schema.alterTable('risk_assessments').addColumn('manifest', 'text').execute();
      await db.schema.alterTable('risk_assessments').addColumn('approved_at', 'text').execute();
      // What is known of earlier registrations: the current one's answers; approved when the policy approved
      // it, when it is the app's approved revision, or (for older revisions, whose required reviews were not
      // kept) when it had an approval and no rejection or request for changes.
      await sql`update risk_assessments set manifest = (select a.manifest from apps a
          where a.id = risk_assessments.app_id and a.revision = risk_assessments.revision)`.execute(db);
      await sql`update risk_assessments set approved_at = created_at where
          exists (select 1 from apps a where a.id = risk_assessments.app_id
            and a.revision = risk_assessments.revision and a.state = 'approved')
          or exists (select 1 from review_decisions d where d.app_id = risk_assessments.app_id
            and d.revision = risk_assessments.revision and d.decision = 'auto_approve')
          or (exists (select 1 from review_decisions d where d.app_id = risk_assessments.app_id
                and d.revision = risk_assessments.revision and d.decision = 'approve')
              and not exists (select 1 from review_decisions d where d.app_id = risk_assessments.app_id
                and d.revision = risk_assessments.revision and d.decision in ('reject', 'request_changes'))
              and exists (select 1 from apps a where a.id = risk_assessments.app_id
                and a.revision > risk_assessments.revision))`.execute(db);
    },
  }),
};
