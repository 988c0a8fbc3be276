import type { Manifest } from '../contracts.ts';

// What the new-app wizard asks and how answers become a manifest, apart from how it looks.

export type Template = {
  name: string;
  version: string;
  title: string;
  description: string;
  /** What the template's own manifest declares: the wizard's first answers when a template is chosen. */
  suggested?: { purpose: string; dataClasses: string[]; connectors: string[] };
};

/**
 * The answers that choosing template `next` fills in: the data its code handles and the company connectors
 * it calls, where the person has not answered yet or still holds what the template chosen before declared.
 * (What the app is for stays the person's own words: reviewers read them.)
 */
export function chooseTemplate(a: Answers, next: Template | undefined, before: Template | undefined) {
  const patch: Partial<Answers> = { template: next?.name ?? '' };
  const was = before?.suggested;
  const is = next?.suggested;
  const untouched = (value: string, suggested: string | undefined) => !value.trim() || value === suggested;
  if (untouched(a.dataClasses.join('\n'), was?.dataClasses.join('\n')))
    patch.dataClasses = is?.dataClasses ?? [];
  if (untouched(a.connectors, was?.connectors.join('\n')))
    patch.connectors = (is?.connectors ?? []).join('\n');
  return patch;
}

/**
 * The data classes, each with the examples that decide it. Who uses the app is not personal data in this
 * sense: the platform knows every user's work identity, and colleagues' names and work e-mails are internal
 * information. Saying so keeps people from declaring every form "personal data" (and a high tier), and
 * from leaving out what really is.
 */
export const dataChoices: { id: Manifest['dataClasses'][number]; label: string; examples: string }[] = [
  {
    id: 'public',
    label: 'Public information anyone may see',
    examples: 'published prices, the canteen menu',
  },
  {
    id: 'internal',
    label: 'Internal information: staff only',
    examples:
      "everyday work, including who did what: colleagues' names and work e-mails, teams, survey answers",
  },
  {
    id: 'confidential',
    label: 'Confidential business information',
    examples: 'plans, contracts, figures not yet published, anything marked confidential',
  },
  {
    id: 'pii',
    label: 'Personal data about people',
    examples:
      "more than a colleague's work identity: home addresses, private phone numbers, ID numbers, dates of birth, customers' or candidates' details",
  },
  {
    id: 'financial',
    label: 'Financial records',
    examples: "the company's accounts, payments, ledgers, bank details",
  },
  {
    id: 'health',
    label: 'Health information',
    examples: 'sick leave, medical conditions, occupational health',
  },
  {
    id: 'regulated',
    label: 'Data under a regulation',
    examples: 'card numbers (PCI), records kept for SOX, export-controlled data',
  },
];

export type Answers = {
  template: string;
  name: string;
  purpose: string;
  department: string;
  maxUsers: string;
  /** People outside the department who may use it too, one work e-mail per line. */
  people: string;
  dataClasses: string[];
  egress: string;
  connectors: string;
  expires: string;
};

export const steps = [
  'template',
  'name',
  'purpose',
  'audience',
  'data',
  'connections',
  'lifetime',
  'review',
] as const;
export type Step = (typeof steps)[number];
export const labels: Record<Step, string> = {
  template: 'Start from',
  name: 'Name',
  purpose: 'Purpose',
  audience: 'Who uses it',
  data: 'Data',
  connections: 'Connections',
  lifetime: 'How long',
  review: 'Check and register',
};

export const lines = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);

export function manifestOf(a: Answers, owner: string, templates: Template[]): Manifest {
  const t = templates.find((x) => x.name === a.template);
  const egress = lines(a.egress);
  const connectors = lines(a.connectors);
  const people = lines(a.people);
  return {
    name: a.name || 'new-app',
    owner,
    purpose: a.purpose.trim().length >= 10 ? a.purpose.trim() : 'not answered yet',
    dataClasses: (a.dataClasses.length ? a.dataClasses : ['internal']) as Manifest['dataClasses'],
    audience: {
      ...(a.department ? { department: a.department } : {}),
      ...(a.maxUsers ? { maxUsers: Number(a.maxUsers) } : {}),
      ...(people.length ? { people: [...new Set(people)] } : {}),
    },
    ...(egress.length || connectors.length
      ? {
          integrations: {
            ...(egress.length ? { egress } : {}),
            ...(connectors.length ? { connectors } : {}),
          },
        }
      : {}),
    ...(t
      ? {
          template: { name: t.name, version: t.version },
          runtime: { kind: 'node' as const, entry: 'server.js' },
        }
      : {}),
    ...(a.expires ? { lifetime: { expires: a.expires } } : {}),
  };
}

/** What is wrong with the answer on this step, in the words a user would use; null when it is fine. */
export function problemWith(step: Step, a: Answers): string | null {
  if (step === 'name') {
    if (!a.name) return 'Give the app a name.';
    if (!/^(?!.*--)[a-z0-9]([a-z0-9-]{0,52}[a-z0-9])?$/.test(a.name))
      return 'Use lower-case letters, digits and single hyphens (no spaces), starting and ending with a letter or digit; at most 54.';
  }
  if (step === 'purpose' && a.purpose.trim().length < 10)
    return 'Say in a sentence what the app is for (at least 10 characters).';
  if (step === 'audience') {
    if (a.department && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(a.department))
      return 'A department is written in lower case, like "finance".';
    if (a.maxUsers && !(Number.isInteger(Number(a.maxUsers)) && Number(a.maxUsers) >= 1))
      return 'The number of people is a whole number, 1 or more.';
    const bad = lines(a.people).find((p) => !/^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$/.test(p));
    if (bad) return `"${bad}" is not a work e-mail address like ana@example.com.`;
  }
  if (step === 'data' && a.dataClasses.length === 0) return 'Choose at least one kind of data.';
  if (step === 'connections') {
    const bad = lines(a.egress).find(
      (h) => !/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/.test(h),
    );
    if (bad) return `"${bad}" is not a host name like api.example.com.`;
  }
  if (step === 'lifetime' && a.expires && Date.parse(`${a.expires}T00:00:00Z`) <= Date.now())
    return 'The end date must be in the future.';
  return null;
}

/** A registered app's answers, to change them: what the wizard asks, prefilled from its manifest. */
export function answersOf(m: Manifest): Answers {
  return {
    template: m.template?.name ?? '',
    name: m.name,
    purpose: m.purpose,
    department: m.audience?.department ?? '',
    maxUsers: m.audience?.maxUsers ? String(m.audience.maxUsers) : '',
    people: (m.audience?.people ?? []).join('\n'),
    dataClasses: [...m.dataClasses],
    egress: (m.integrations?.egress ?? []).join('\n'),
    connectors: (m.integrations?.connectors ?? []).join('\n'),
    expires: m.lifetime?.expires ?? '',
  };
}

/**
 * The registered manifest with the wizard's answers in place of the old ones. Everything the wizard does
 * not ask (secrets, runtime settings, the template it was made from, web settings) is kept as it was.
 */
export function editedManifest(original: Manifest, a: Answers, templates: Template[]): Manifest {
  const fresh = manifestOf(a, original.owner, templates);
  const { lifetime: _lifetime, integrations: oldIntegrations, audience: oldAudience, ...kept } = original;
  const { department: _d, maxUsers: _m, people: _p, ...otherAudience } = oldAudience ?? {};
  const integrations = {
    ...oldIntegrations,
    egress: fresh.integrations?.egress ?? [],
    connectors: fresh.integrations?.connectors ?? [],
  };
  if (!integrations.egress.length) delete (integrations as { egress?: string[] }).egress;
  if (!integrations.connectors.length) delete (integrations as { connectors?: string[] }).connectors;
  const audience = { ...otherAudience, ...fresh.audience };
  return {
    ...kept,
    purpose: fresh.purpose,
    dataClasses: fresh.dataClasses,
    ...(Object.keys(audience).length ? { audience } : {}),
    ...(Object.keys(integrations).length ? { integrations } : {}),
    ...(fresh.lifetime ? { lifetime: fresh.lifetime } : {}),
  };
}
