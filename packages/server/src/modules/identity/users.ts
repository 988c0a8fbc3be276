import type { Kysely } from 'kysely';
import type { Database, UsersTable } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { GroupGrant } from './oidc-settings.ts';
import type { Principal, Role, Scope, Specialty } from './principal.ts';

/** A platform user as stored: identity from the IdP, roles from the group mapping at the last login. */
export type User = {
  id: string;
  email: string;
  name: string;
  department: string | null;
  roles: Role[];
  specialties: Specialty[];
  disabled: boolean;
};

export function toUser(row: UsersTable): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    department: row.department,
    roles: JSON.parse(row.roles) as Role[],
    specialties: JSON.parse(row.specialties) as Specialty[],
    disabled: row.disabled_at !== null,
  };
}

/** Roles and specialties granted by a list of IdP groups, de-duplicated and sorted. */
export function grantsFor(groups: string[], mapping: Record<string, GroupGrant>): GroupGrant {
  const r = new Set<Role>();
  const s = new Set<Specialty>();
  for (const group of groups) {
    for (const role of mapping[group]?.roles ?? []) r.add(role);
    for (const specialty of mapping[group]?.specialties ?? []) s.add(specialty);
  }
  return { roles: [...r].sort(), specialties: [...s].sort() };
}

export function principalFor(user: User, scopes: Scope[], via: Principal['via']): Principal {
  return {
    userId: user.id,
    email: user.email,
    name: user.name,
    department: user.department,
    roles: user.roles,
    specialties: user.specialties,
    scopes,
    via,
  };
}

export async function findUserById(db: Kysely<Database>, id: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toUser(row) : undefined;
}

export async function findUserByEmail(db: Kysely<Database>, email: string): Promise<User | undefined> {
  const row = await db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  return row ? toUser(row) : undefined;
}

/** E-mails of enabled users holding a role (as of their last sign-in): whom the platform tells. */
export async function emailsWithRole(db: Kysely<Database>, role: Role): Promise<string[]> {
  const rows = await db
    .selectFrom('users')
    .select(['email', 'roles'])
    .where('disabled_at', 'is', null)
    .execute();
  return rows.filter((r) => (JSON.parse(r.roles) as Role[]).includes(role)).map((r) => r.email);
}

/**
 * Makes someone the owner of an app, in the caller's transaction: they must have an enabled account,
 * and the manifest's owner follows the record's. Throws `conflict` with `hint` when they cannot own it.
 */
export async function setOwner(
  trx: Kysely<Database>,
  app: { id: string; manifest: object },
  email: string,
  now: string,
  hint: string,
): Promise<void> {
  const user = await trx
    .selectFrom('users')
    .select('disabled_at')
    .where('email', '=', email)
    .executeTakeFirst();
  if (!user || user.disabled_at)
    throw new AppError('conflict', `${email} has no active account here; ${hint}`);
  await trx
    .updateTable('apps')
    .set({ owner: email, manifest: JSON.stringify({ ...app.manifest, owner: email }), updated_at: now })
    .where('id', '=', app.id)
    .execute();
}
