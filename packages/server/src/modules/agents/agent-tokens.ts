import { createHash, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { randomSecret } from '../../ids.ts';
import type { Principal } from '../identity/principal.ts';
import { findUserById, principalFor } from '../identity/users.ts';
import { OAuthError, sha256 } from './agent-oauth.ts';
import type { AgentScope, DelegationLimits } from './delegation-types.ts';

/** Agents' tokens: access tokens for /mcp, refresh tokens for /oauth/token. Easy to spot when leaked. */
export const accessPrefix = 'maa_';
export const refreshPrefix = 'mar_';
const accessTtlMs = 3_600_000;

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/**
 * The token endpoint and the tokens it issues: an authorization code for tokens with its PKCE verifier, a
 * refresh that rotates, and the agent principal an access token stands for. Tokens are stored as SHA-256
 * and bound to the delegation a person consented to; none outlives it.
 */
export function createAgentTokens(deps: {
  db: Kysely<Database>;
  clock: Clock;
  /** The URL of the MCP endpoint: the audience of every access token (RFC 8707's resource). */
  resource: () => string;
}) {
  const { db, clock } = deps;

  async function issue(trx: Kysely<Database>, delegationId: string, expiresAt: string) {
    const now = clock.nowIso();
    const access = accessPrefix + randomSecret(32);
    const refresh = refreshPrefix + randomSecret(32);
    const accessExpires = new Date(
      Math.min(Date.parse(now) + accessTtlMs, Date.parse(expiresAt)),
    ).toISOString();
    await trx
      .insertInto('agent_tokens')
      .values([
        {
          token_hash: sha256(access),
          delegation_id: delegationId,
          kind: 'access',
          created_at: now,
          expires_at: accessExpires,
          revoked_at: null,
        },
        {
          token_hash: sha256(refresh),
          delegation_id: delegationId,
          kind: 'refresh',
          created_at: now,
          expires_at: expiresAt,
          revoked_at: null,
        },
      ])
      .execute();
    const delegation = await trx
      .selectFrom('agent_delegations')
      .select('scopes')
      .where('id', '=', delegationId)
      .executeTakeFirstOrThrow();
    return {
      access_token: access,
      token_type: 'Bearer',
      expires_in: Math.max(1, Math.floor((Date.parse(accessExpires) - Date.parse(now)) / 1000)),
      refresh_token: refresh,
      scope: (JSON.parse(delegation.scopes) as string[]).join(' '),
    };
  }

  /** The token endpoint (RFC 6749 §3.2): a code for tokens with its PKCE verifier, or a refresh that rotates. */
  async function token(form: Record<string, string | undefined>) {
    if (form.resource !== undefined && form.resource !== deps.resource())
      throw new OAuthError('invalid_target', `the only resource here is ${deps.resource()}`);
    if (form.grant_type === 'authorization_code') {
      if (!form.code || !form.code_verifier || !form.client_id || !form.redirect_uri)
        throw new OAuthError('invalid_request', 'send code, code_verifier, client_id and redirect_uri');
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom('agent_codes')
          .selectAll()
          .where('code_hash', '=', sha256(form.code!))
          .executeTakeFirst();
        const now = clock.nowIso();
        if (!row || row.used_at || row.expires_at <= now)
          throw new OAuthError('invalid_grant', 'the code is unknown, used or expired; authorize again');
        // Spent whatever comes next: a code that failed its checks is not tried again.
        await trx
          .updateTable('agent_codes')
          .set({ used_at: now })
          .where('code_hash', '=', row.code_hash)
          .execute();
        const expected = Buffer.from(row.code_challenge);
        const got = Buffer.from(s256(form.code_verifier!));
        if (
          row.client_id !== form.client_id ||
          row.redirect_uri !== form.redirect_uri ||
          expected.length !== got.length ||
          !timingSafeEqual(expected, got)
        )
          throw new OAuthError(
            'invalid_grant',
            'the code was issued to another client, redirect URI or PKCE verifier',
          );
        const d = await live(trx, row.delegation_id);
        return issue(trx, d.id, d.expires_at);
      });
    }
    if (form.grant_type === 'refresh_token') {
      if (!form.refresh_token?.startsWith(refreshPrefix))
        throw new OAuthError('invalid_request', 'send refresh_token');
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom('agent_tokens')
          .selectAll()
          .where('token_hash', '=', sha256(form.refresh_token!))
          .where('kind', '=', 'refresh')
          .executeTakeFirst();
        const now = clock.nowIso();
        if (!row || row.revoked_at || row.expires_at <= now)
          throw new OAuthError(
            'invalid_grant',
            'the refresh token is unknown, used, revoked or expired; authorize again',
          );
        await trx
          .updateTable('agent_tokens')
          .set({ revoked_at: now })
          .where('token_hash', '=', row.token_hash)
          .execute();
        // A refresh never widens a delegation: the new tokens carry the delegation as the person left it.
        const d = await live(trx, row.delegation_id);
        return issue(trx, d.id, d.expires_at);
      });
    }
    throw new OAuthError('unsupported_grant_type', 'grant_type must be authorization_code or refresh_token');
  }

  async function live(trx: Kysely<Database>, delegationId: string) {
    const d = await trx
      .selectFrom('agent_delegations')
      .selectAll()
      .where('id', '=', delegationId)
      .executeTakeFirstOrThrow();
    if (d.revoked_at) throw new OAuthError('invalid_grant', `the delegation was revoked at ${d.revoked_at}`);
    if (d.expires_at <= clock.nowIso()) throw new OAuthError('invalid_grant', 'the delegation has expired');
    return d;
  }

  /**
   * The agent an access token stands for: the person's principal, narrowed to what an agent may be (the
   * creator role at most, no specialties), with the agent named. Null, with why, when it is not valid.
   */
  async function authenticate(
    bearer: string,
  ): Promise<{ principal: Principal; scopes: AgentScope[]; limits: DelegationLimits } | { refused: string }> {
    if (!bearer.startsWith(accessPrefix) || bearer.length > 200)
      return { refused: 'not an agent access token' };
    const row = await db
      .selectFrom('agent_tokens')
      .innerJoin('agent_delegations', 'agent_delegations.id', 'agent_tokens.delegation_id')
      .select([
        'agent_tokens.kind',
        'agent_tokens.expires_at as token_expires',
        'agent_tokens.revoked_at as token_revoked',
        'agent_delegations.id',
        'agent_delegations.user_id',
        'agent_delegations.client_name',
        'agent_delegations.client_version',
        'agent_delegations.model',
        'agent_delegations.scopes',
        'agent_delegations.limits',
        'agent_delegations.expires_at',
        'agent_delegations.revoked_at',
      ])
      .where('agent_tokens.token_hash', '=', sha256(bearer))
      .executeTakeFirst();
    const now = clock.nowIso();
    if (row?.kind !== 'access') return { refused: 'the token is unknown' };
    if (row.revoked_at) return { refused: `the delegation was revoked at ${row.revoked_at}` };
    if (row.expires_at <= now) return { refused: 'the delegation has expired' };
    if (row.token_revoked || row.token_expires <= now)
      return { refused: 'the token has expired; refresh it' };
    const user = await findUserById(db, row.user_id);
    if (!user || user.disabled) return { refused: 'the person this agent acts for can no longer sign in' };
    const base = principalFor(user, ['apps:read', 'apps:write'], { kind: 'agent', delegationId: row.id });
    const principal: Principal = {
      ...base,
      roles: base.roles.filter((r) => r === 'creator'),
      specialties: [],
      agent: { delegationId: row.id, client: row.client_name, version: row.client_version, model: row.model },
    };
    return {
      principal,
      scopes: JSON.parse(row.scopes) as AgentScope[],
      limits: JSON.parse(row.limits) as DelegationLimits,
    };
  }

  return { token, authenticate };
}

export type AgentTokens = ReturnType<typeof createAgentTokens>;
