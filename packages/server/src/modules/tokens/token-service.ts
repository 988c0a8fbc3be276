import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ReadCache } from '../../db/read-cache.ts';
import type { ApiTokensTable, Database } from '../../db/schema.ts';
import { AppError, forbidden, notFound } from '../../errors.ts';
import { newId, nowIso, randomSecret } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { scopes as allScopes, hasRole, type Principal, type Scope } from '../identity/principal.ts';
import { findUserById, principalFor } from '../identity/users.ts';

/** Every token starts with this, so leaked tokens are easy to spot in logs and by secret scanners. */
export const tokenPrefix = 'mat_';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A token as listed: never its value. */
export type TokenInfo = {
  id: string;
  name: string;
  owner: string;
  scopes: Scope[];
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
};

const toInfo = (row: ApiTokensTable, owner: string): TokenInfo => ({
  id: row.id,
  name: row.name,
  owner,
  scopes: JSON.parse(row.scopes) as Scope[],
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
  lastUsedAt: row.last_used_at,
});

export const maxTokenDays = 365;

/** API tokens for the CLI, CI and scripts: random, shown once, stored as SHA-256, scoped, expiring, revocable. */
export function createTokenService(deps: { db: Kysely<Database>; audit: Pick<AuditService, 'record'> }) {
  const { db, audit } = deps;

  async function create(
    userId: string,
    input: { name: string; scopes?: Scope[]; expiresInDays?: number },
    ctx: AuditContext,
  ): Promise<{ token: string; info: TokenInfo }> {
    const wanted = input.scopes ?? [...allScopes];
    const days = input.expiresInDays ?? 30;
    const token = tokenPrefix + randomSecret(32);
    const row: ApiTokensTable = {
      id: newId('token'),
      user_id: userId,
      name: input.name,
      token_hash: sha256(token),
      scopes: JSON.stringify([...new Set(wanted)].sort()),
      created_at: nowIso(),
      expires_at: new Date(Date.now() + days * 86_400_000).toISOString(),
      revoked_at: null,
      last_used_at: null,
    };
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('api_tokens').values(row).execute();
      await audit.record(trx, ctx, {
        action: 'token.issued',
        targetType: 'token',
        target: row.id,
        summary: {
          name: row.name,
          scopes: JSON.parse(row.scopes),
          expiresAt: row.expires_at,
          user: ctx.actor,
        },
      });
    });
    return { token, info: toInfo(row, ctx.actor) };
  }

  // The minute each token's last use was written, by this process: the row a cache keeps does not move.
  const usedAt = new Map<string, string>();

  /**
   * The principal a bearer token stands for, or null when it is unknown, expired or revoked. The gateway
   * passes its read cache: the token's row and user are then read once until either changes.
   */
  async function authenticate(token: string, cache?: ReadCache): Promise<Principal | null> {
    if (!token.startsWith(tokenPrefix) || token.length > 200) return null;
    const hash = sha256(token);
    const lookup = async () => {
      const row = await db
        .selectFrom('api_tokens')
        .selectAll()
        .where('token_hash', '=', hash)
        .executeTakeFirst();
      return row ? { row, user: await findUserById(db, row.user_id) } : null;
    };
    const found = await (cache ? cache.memo('token', hash, lookup) : lookup());
    const now = nowIso();
    if (!found || found.row.revoked_at || found.row.expires_at <= now) return null;
    const { row, user } = found;
    if (!user || user.disabled) return null;
    // Last use is informational; a minute's resolution spares a write per request.
    const minute = now.slice(0, 16);
    if ((usedAt.get(row.id) ?? row.last_used_at?.slice(0, 16)) !== minute) {
      usedAt.set(row.id, minute);
      if (usedAt.size > 10_000) usedAt.clear();
      await db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
    }
    return principalFor(user, JSON.parse(row.scopes) as Scope[], { kind: 'token', tokenId: row.id });
  }

  /** The caller's tokens; an admin may ask for everyone's. */
  async function list(principal: Principal, all: boolean): Promise<TokenInfo[]> {
    if (all && !hasRole(principal, 'admin')) throw forbidden("only admins can list every user's tokens");
    let q = db
      .selectFrom('api_tokens')
      .innerJoin('users', 'users.id', 'api_tokens.user_id')
      .selectAll('api_tokens')
      .select('users.email')
      .orderBy('api_tokens.created_at', 'desc');
    if (!all) q = q.where('api_tokens.user_id', '=', principal.userId);
    return (await q.execute()).map((r) => toInfo(r, r.email));
  }

  async function revoke(principal: Principal, id: string, ctx: AuditContext): Promise<TokenInfo> {
    return db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('api_tokens')
        .innerJoin('users', 'users.id', 'api_tokens.user_id')
        .selectAll('api_tokens')
        .select('users.email')
        .where('api_tokens.id', '=', id)
        .executeTakeFirst();
      // Someone else's token is reported as missing, so ids cannot be probed.
      if (!row || (row.user_id !== principal.userId && !hasRole(principal, 'admin')))
        throw notFound(`token ${id}`);
      if (row.revoked_at)
        throw new AppError('conflict', `token ${id} was already revoked at ${row.revoked_at}`);
      const revokedAt = nowIso();
      await trx.updateTable('api_tokens').set({ revoked_at: revokedAt }).where('id', '=', id).execute();
      await audit.record(trx, ctx, {
        action: 'token.revoked',
        targetType: 'token',
        target: id,
        summary: { name: row.name, owner: row.email },
      });
      return toInfo({ ...row, revoked_at: revokedAt }, row.email);
    });
  }

  return { create, authenticate, list, revoke };
}

export type TokenService = ReturnType<typeof createTokenService>;
