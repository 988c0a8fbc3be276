import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ReadCache } from '../../db/read-cache.ts';
import type { Database } from '../../db/schema.ts';
import { nowIso } from '../../ids.ts';
import { scopes as allScopes, type Principal } from './principal.ts';
import { principalFor, toUser } from './users.ts';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The principal behind a session cookie, or null when it is unknown, expired or revoked, or bound to
 * another app (`app` null: the platform, which app sessions never reach). The gateway passes its read
 * cache: the session's row and user are then read once until either changes; expiry is checked each time.
 */
export async function sessionPrincipal(
  db: Kysely<Database>,
  cookie: string,
  app: string | null = null,
  cache?: ReadCache,
): Promise<Principal | null> {
  const hash = sha256(cookie);
  const lookup = () =>
    db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('users')
      .select(['sessions.csrf_token', 'sessions.expires_at', 'sessions.revoked_at'])
      .where('sessions.id_hash', '=', hash)
      .where('sessions.app', app === null ? 'is' : '=', app)
      .executeTakeFirst();
  const row = await (cache ? cache.memo('session', `${app ?? ''}\u0000${hash}`, lookup) : lookup());
  if (!row || row.revoked_at || row.disabled_at || row.expires_at < nowIso()) return null;
  return principalFor(toUser(row), [...allScopes], { kind: 'session', csrfToken: row.csrf_token });
}
