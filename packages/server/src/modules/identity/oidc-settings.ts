import type { Role, Specialty } from './principal.ts';

/** What an IdP group grants. */
export type GroupGrant = { roles: Role[]; specialties: Specialty[] };

export type OidcSettings = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  groupsClaim: string;
  departmentClaim: string;
  /** The claim holding the user's manager's e-mail: who hears about an app its owner does not answer for. */
  managerClaim: string;
  groupRoles: Record<string, GroupGrant>;
};

/** The group mapping used by the embedded development IdP's seeded users. */
export const devGroupRoles: Record<string, GroupGrant> = {
  'microapp-creators': { roles: ['creator'], specialties: [] },
  'microapp-security-reviewers': { roles: ['reviewer'], specialties: ['security'] },
  'microapp-compliance-reviewers': { roles: ['reviewer'], specialties: ['compliance'] },
  'microapp-admins': { roles: ['admin'], specialties: [] },
  'microapp-auditors': { roles: ['auditor'], specialties: [] },
};
