import type { Kysely, Migration } from 'kysely';
import type { Dialect } from '../database.ts';

type AnyDb = Kysely<unknown>;

// Migrations for AI agents acting for people: OAuth clients, delegations, their tokens, checkpoints and
// the record of every tool call. Shipped: never edit one, add the next (../migrations.ts lists every file).

export const agents: Record<string, (dialect: Dialect) => Migration> = {
  '0027_agents': () => ({
    async up(db: AnyDb) {
      // An MCP client as it registered itself (RFC 7591): a public client, so no secret.
      await db.schema
        .createTable('agent_clients')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('model', 'text')
        .addColumn('redirect_uris', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // A person's consent: which agent may act for them, with what, how much and until when.
      await db.schema
        .createTable('agent_delegations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('client_id', 'text', (c) => c.notNull().references('agent_clients.id'))
        .addColumn('client_name', 'text', (c) => c.notNull())
        .addColumn('client_version', 'text')
        .addColumn('model', 'text')
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('limits', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_by', 'text')
        .execute();
      await db.schema
        .createIndex('agent_delegations_user')
        .on('agent_delegations')
        .columns(['user_id', 'created_at'])
        .execute();
      // One-time authorization codes (stored hashed) waiting for their PKCE exchange.
      await db.schema
        .createTable('agent_codes')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('delegation_id', 'text', (c) => c.notNull().references('agent_delegations.id'))
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('redirect_uri', 'text', (c) => c.notNull())
        .addColumn('code_challenge', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();
      // Access and refresh tokens of a delegation, stored as SHA-256.
      await db.schema
        .createTable('agent_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('delegation_id', 'text', (c) => c.notNull().references('agent_delegations.id'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      // A tool call held until the delegating person approves or refuses it.
      await db.schema
        .createTable('agent_checkpoints')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('delegation_id', 'text', (c) => c.notNull().references('agent_delegations.id'))
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('app', 'text')
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('input_digest', 'text', (c) => c.notNull())
        .addColumn('reasons', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('decided_at', 'text')
        .addColumn('decided_by', 'text')
        .addColumn('note', 'text')
        .execute();
      await db.schema
        .createIndex('agent_checkpoints_user_state')
        .on('agent_checkpoints')
        .columns(['user_id', 'state', 'created_at'])
        .execute();
      await db.schema
        .createIndex('agent_checkpoints_digest')
        .on('agent_checkpoints')
        .columns(['delegation_id', 'input_digest'])
        .execute();
      // Every tool call an agent made: what it asked, what came of it, digests of input and output.
      await db.schema
        .createTable('agent_calls')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('delegation_id', 'text', (c) => c.notNull().references('agent_delegations.id'))
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('app', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('checkpoint_id', 'text')
        .addColumn('prompt', 'text')
        .addColumn('input_digest', 'text', (c) => c.notNull())
        .addColumn('output_digest', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('agent_calls_delegation')
        .on('agent_calls')
        .columns(['delegation_id', 'at'])
        .execute();
      await db.schema.createIndex('agent_calls_app').on('agent_calls').columns(['app', 'at']).execute();
    },
  }),
  '0028_model_calls': () => ({
    async up(db: AnyDb) {
      // A connector may be a model API (OpenAI- or Anthropic-compatible): the broker then checks the model
      // each call names, and counts the tokens each answer used.
      await db.schema.alterTable('connectors').addColumn('model_api', 'text').execute();
      await db.schema.alterTable('app_egress').addColumn('model', 'text').execute();
      await db.schema.alterTable('app_egress').addColumn('tokens_in', 'integer').execute();
      await db.schema.alterTable('app_egress').addColumn('tokens_out', 'integer').execute();
    },
  }),
};
