import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import type { BlockNote } from '../catalog/catalog-policy.ts';

/** The newest organization bundle, whose data holds the blocked domains. */
export function latestOrgBundle(db: Kysely<Database>) {
  return db.selectFrom('policy_bundles').selectAll().orderBy('revision', 'desc').limit(1).executeTakeFirst();
}

/**
 * The domains the organization blocks now, each with the reason the admin gave when they blocked it (from
 * the audited change that added it), or the message of the bundle that holds the list when it came in a
 * plain policy push. A person refused for one of them reads who decided and why, not only a rule's name.
 */
export async function blockNotesOf(db: Kysely<Database>): Promise<BlockNote[]> {
  const bundle = await latestOrgBundle(db);
  const domains = bundle
    ? ((JSON.parse(bundle.data) as { blocked_domains?: string[] }).blocked_domains ?? [])
    : [];
  if (!bundle || domains.length === 0) return [];
  const changes = await db
    .selectFrom('audit_events')
    .select(['actor', 'occurred_at', 'reason', 'summary'])
    .where('action', '=', 'policy.blocked_domains_changed')
    .orderBy('seq', 'desc')
    .limit(500)
    .execute();
  return domains.map((domain) => {
    const change = changes.find((c) =>
      ((JSON.parse(c.summary) as { added?: string[] }).added ?? []).includes(domain),
    );
    return change
      ? { domain, reason: change.reason ?? 'no reason given', by: change.actor, at: change.occurred_at }
      : { domain, reason: bundle.message ?? 'no reason given', by: bundle.created_by, at: bundle.created_at };
  });
}
