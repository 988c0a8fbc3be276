import type { FastifyInstance } from 'fastify';
import { rolesOnly } from './access.ts';
import type { OidcSettings } from './oidc-settings.ts';

/**
 * How the identity provider's groups become platform roles, read-only: it is configuration
 * (`MICROAPP_OIDC_GROUP_ROLES`), changed where the server is deployed and reviewed like any other change to it,
 * not from a web page. Admins and auditors read it; the client secret is never part of the answer.
 */
export function registerRoleMappingRoute(
  fastify: FastifyInstance,
  deps: { oidc: () => OidcSettings | null; dev: boolean },
) {
  fastify.get(
    '/api/v1/identity/role-mapping',
    {
      config: { access: rolesOnly(['admin', 'auditor'], 'audit:read') },
      schema: {
        tags: ['identity'],
        summary:
          'Which identity-provider groups give which platform roles and specialties (admins, auditors)',
      },
    },
    async () => {
      const oidc = deps.oidc();
      return {
        source: deps.dev ? 'the dev identity provider (--dev)' : 'MICROAPP_OIDC_GROUP_ROLES',
        issuer: oidc?.issuer ?? null,
        claims: {
          groups: oidc?.groupsClaim ?? null,
          department: oidc?.departmentClaim ?? null,
          manager: oidc?.managerClaim ?? null,
        },
        groups: Object.entries(oidc?.groupRoles ?? {})
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([group, grant]) => ({ group, roles: grant.roles, specialties: grant.specialties })),
      };
    },
  );
}
