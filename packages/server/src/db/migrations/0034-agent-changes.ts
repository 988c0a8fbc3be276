import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Shipped: never edit one, add the next (../migrations.ts lists every file).

export const agentChanges: Record<string, (_dialect: Dialect) => Migration> = {
  '0034_agent_changes': () => ({
    async up(db: AnyDb) {
      // The delegation whose agent pushed a change's head commit (null: a person pushed it). Such a change
      // merges only once that person confirms it. A nullable column: older servers run on beside it.
      await db.schema.alterTable('change_requests').addColumn('agent_delegation_id', 'text').execute();
    },
  }),
};
