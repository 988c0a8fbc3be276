// A company-sized catalog in seconds (for tests and benches): copies of apps the platform registered itself (so every row is one
// the platform wrote, with its assessment, reviews and data classes), spread over departments and owners,
// written straight into the database with one statement per table.
import { sql } from 'kysely';
import type { Db } from '../src/db/database.ts';

export type CatalogShape = {
  /** Apps to add. */
  apps: number;
  /** Departments they are spread over (the registering person's own is one of them). */
  departments: number;
  /** Distinct owners. */
  owners: number;
};

// The copies: app i is a copy of registered app (i % registered), renamed; it belongs to that app's
// department when i % departments is 0 and to department dept-(i % departments) otherwise, and is owned by
// owner-(i % owners), registered by nobody who signs in.
const copies = (serial: string) => `
  with recursive seq(i) as (${serial})
  select i, t.* from seq
  join (select row_number() over (order by name) - 1 as k, count(*) over () as templates, apps.* from apps where apps.id not like 'app_seed_%') t
    on t.k = i % t.templates`;

function statements(dialect: 'sqlite' | 'postgres', shape: CatalogShape): string[] {
  const serial =
    dialect === 'sqlite'
      ? `select 0 union all select i + 1 from seq where i + 1 < ${shape.apps}`
      : `select generate_series(0, ${shape.apps - 1})`;
  const pad = (expr: string) =>
    dialect === 'sqlite' ? `printf('%07d', ${expr})` : `lpad((${expr})::text, 7, '0')`;
  const src = copies(serial);
  const id = (prefix: string) => `'${prefix}_seed_' || ${pad('c.i')}`;
  return [
    `insert into apps (id, name, owner, registered_by, department, state, tier, revision, manifest, assessment_id, required_reviews, created_at, updated_at)
     select ${id('app')}, 'seed-' || ${pad('c.i')} || '-' || c.name, 'owner-' || (c.i % ${shape.owners}) || '@example.com',
       c.registered_by || '-seed', case when c.i % ${shape.departments} = 0 then c.department else 'dept-' || (c.i % ${shape.departments}) end, c.state, c.tier, c.revision,
       replace(c.manifest, '"name":"' || c.name || '"', '"name":"seed-' || ${pad('c.i')} || '-' || c.name || '"'),
       ${id('assessment')}, c.required_reviews, c.created_at, c.updated_at
     from (${src}) c`,
    `insert into risk_assessments (id, app_id, revision, score, tier, factors, inputs, rules_version, created_at)
     select ${id('assessment')}, ${id('app')}, r.revision, r.score, r.tier, r.factors, r.inputs, r.rules_version, r.created_at
     from (${src}) c join risk_assessments r on r.id = c.assessment_id`,
    `insert into app_data_classes (app_id, data_class)
     select ${id('app')}, d.data_class from (${src}) c join app_data_classes d on d.app_id = c.id`,
  ];
}

/** Adds `shape.apps` copies of the apps already registered in the database, in one transaction. */
export async function seedCatalog(db: Db, shape: CatalogShape): Promise<void> {
  if (shape.apps <= 0) return;
  await db.kysely.transaction().execute(async (trx) => {
    for (const statement of statements(db.dialect, shape)) await sql.raw(statement).execute(trx);
  });
  await sql.raw('analyze').execute(db.kysely);
}
