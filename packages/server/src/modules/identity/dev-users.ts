/** A seeded account of the embedded development IdP. */
export type DevUser = {
  sub: string;
  email: string;
  name: string;
  department: string;
  groups: string[];
  /** The manager's e-mail (the `manager` claim): who hears about an app its owner does not answer for. */
  manager?: string;
  about: string;
};

/** The people a `--dev` server knows; groups map to roles through `devGroupRoles`. */
export const devUsers: DevUser[] = [
  {
    sub: 'dev-alice',
    email: 'alice@example.com',
    name: 'Alice Analyst',
    department: 'finance',
    groups: ['microapp-creators'],
    manager: 'dave@example.com',
    about: 'creator, finance; reports to dave',
  },
  {
    sub: 'dev-dave',
    email: 'dave@example.com',
    name: 'Dave Developer',
    department: 'finance',
    groups: ['microapp-creators'],
    about: 'creator, finance',
  },
  {
    sub: 'dev-frank',
    email: 'frank@example.com',
    name: 'Frank Marketer',
    department: 'marketing',
    groups: ['microapp-creators'],
    manager: 'carol@example.com',
    about: 'creator, marketing; reports to carol',
  },
  {
    sub: 'dev-bob',
    email: 'bob@example.com',
    name: 'Bob Security',
    department: 'information-security',
    groups: ['microapp-security-reviewers'],
    about: 'reviewer, security',
  },
  {
    sub: 'dev-erin',
    email: 'erin@example.com',
    name: 'Erin Compliance',
    department: 'compliance',
    groups: ['microapp-compliance-reviewers'],
    about: 'reviewer, compliance',
  },
  {
    sub: 'dev-carol',
    email: 'carol@example.com',
    name: 'Carol Platform',
    department: 'platform',
    groups: ['microapp-admins'],
    about: 'platform admin',
  },
  {
    sub: 'dev-ivan',
    email: 'ivan@example.com',
    name: 'Ivan Auditor',
    department: 'internal-audit',
    groups: ['microapp-auditors'],
    about: 'auditor (read-only)',
  },
];
