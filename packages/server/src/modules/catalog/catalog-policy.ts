import type { DecisionRecord } from '../risk/risk-evaluator.ts';
import type { Tier } from '../risk/risk-rules.ts';
import type { Manifest } from './manifest-schema.ts';

/** The deny rules of the policy packs and org bundles, as the policy engine evaluates them. */
export type Admission = (input: unknown) => Promise<{
  denials: { entrypoint: string; message: string }[];
  decisions: DecisionRecord[];
  revision: string;
}>;

/** Why the organization blocked a domain: the admin's words when they blocked it, who, and when. */
export type BlockNote = { domain: string; reason: string; by: string; at: string };

/** A deny rule's message, with the host it was about and, for a blocked domain, the admin's reason. */
export type PolicyDenial = {
  /** Where it would stop the app: at registration, or at its deploy (the registration refuses both). */
  stage: 'register' | 'deploy';
  entrypoint: string;
  message: string;
  host: string | null;
  blocked?: BlockNote;
};

export type PolicyCheck = { revision: string; denials: PolicyDenial[]; decisions: DecisionRecord[] };

/**
 * Every deny rule an app meets on its way to running, asked at once: the registration's own, then a
 * deploy's for each outside host it names (the same inputs the launcher gives at deploy). A host blocked by
 * the organization, a connector not approved for the app's data: the wizard, the registration and the
 * reviewers hear of it now, not after both reviews when the deploy stops. Writes nothing.
 */
export async function checkPolicies(
  admission: Admission,
  input: {
    manifest: Manifest;
    user: { email: string; department: string | null };
    tier: Tier;
    /** The organization's blocked domains with the reasons they were blocked for. */
    blockNotes?: () => Promise<BlockNote[]>;
  },
): Promise<PolicyCheck> {
  const { manifest, user, tier } = input;
  const registered = await admission({ request: { method: 'register' }, manifest, user });
  const denials: PolicyDenial[] = registered.denials.map((d) => ({
    ...d,
    stage: 'register' as const,
    host: null,
  }));
  const decisions = [...registered.decisions];
  const hosts = manifest.integrations?.egress ?? [];
  for (const host of hosts.length ? hosts : [null]) {
    const deployed = await admission({
      request: { method: 'deploy', ...(host ? { host } : {}) },
      manifest,
      app: { name: manifest.name, tier },
    });
    decisions.push(...deployed.decisions);
    for (const d of deployed.denials)
      if (!denials.some((x) => x.message === d.message)) denials.push({ ...d, stage: 'deploy', host });
  }
  if (denials.some((d) => d.host) && input.blockNotes) {
    const notes = await input.blockNotes();
    for (const d of denials) {
      const note = d.host ? notes.find((n) => d.host === n.domain || d.host!.endsWith(`.${n.domain}`)) : null;
      if (note) d.blocked = note;
    }
  }
  return { revision: registered.revision, denials, decisions };
}

/** The denials in one sentence, each with the admin's reason when a blocked domain is the cause. */
export function denialSentence(denials: PolicyDenial[]): string {
  return denials
    .map((d) => (d.blocked ? `${d.message} (${d.blocked.by}: "${d.blocked.reason}")` : d.message))
    .join('; ');
}
