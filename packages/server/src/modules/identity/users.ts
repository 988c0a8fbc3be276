import type { Kysely } from 'kysely';
import type { GroupGrant } from '../../config.ts';
import type { Database, UsersTable } from '../../db/schema.ts';
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
