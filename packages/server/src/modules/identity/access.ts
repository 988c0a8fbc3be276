import type { Role, Scope } from './principal.ts';

/**
 * Who may call a route. Every route under /api and /auth declares one in `config.access`;
 * the server refuses to start when a route has none.
 */
export type AccessRule =
  | { kind: 'public'; why: string }
  | { kind: 'authenticated'; scope: Scope | null }
  | { kind: 'roles'; roles: Role[]; scope: Scope | null };

export const publicRoute = (why: string): AccessRule => ({ kind: 'public', why });
export const anyUser = (scope: Scope | null = null): AccessRule => ({ kind: 'authenticated', scope });
export const rolesOnly = (roles: Role[], scope: Scope | null = null): AccessRule => ({
  kind: 'roles',
  roles,
  scope,
});

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: AccessRule;
  }
}
