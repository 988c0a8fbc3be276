import type { BlobStore } from './modules/blobs/blob-store.ts';
import { sandboxProblem } from './modules/runtime/sandbox-common.ts';

/** One thing `/readyz` asks before it says ready: null when fine, else why not, naming the setting. */
export type ReadinessCheck = () => Promise<string | null>;

/** The shared blob store answers and takes a write (MICROAPP_BLOB_REGISTRY, or the data folder). */
export function blobStoreCheck(blobs: Pick<BlobStore, 'check' | 'where'>): ReadinessCheck {
  return async () => {
    try {
      await blobs.check();
      return null;
    } catch (error) {
      return `the blob store (${blobs.where}) cannot be used: ${(error as Error).message}`;
    }
  };
}

/**
 * Not ready until the server has finished starting: it listens before it knows its public URL (in dev, the
 * port it was given) and before the dev identity provider and the work it takes over are up, and a sign-in
 * in between failed with a 500. `started()` is called once all of that is done.
 */
export function startupCheck(): { check: ReadinessCheck; started: () => void } {
  let done = false;
  return {
    check: async () => (done ? null : 'starting: the server has not finished starting yet'),
    started: () => {
      done = true;
    },
  };
}

/**
 * A sandbox can start on this replica: bubblewrap may make its namespaces and its /proc. Where it may not
 * (a container with a masked /proc, user namespaces refused), every build and every app would fail at its
 * first step; the replica says so, and what to change, instead of taking work it cannot do.
 */
export function sandboxCheck(): ReadinessCheck {
  return async () => {
    const problem = sandboxProblem();
    return problem ? `no build or app can run on this replica: ${problem}` : null;
  };
}

/**
 * What the identity provider's discovery document says, or why it cannot be read: it must answer, and name
 * itself with exactly the issuer configured, or every sign-in would fail at the token's `iss` check.
 */
export async function issuerProblem(issuer: string): Promise<{ problem: string; misnamed: boolean } | null> {
  const bare = (s: string) => s.replace(/\/+$/, '');
  const at = `${bare(issuer)}/.well-known/openid-configuration`;
  try {
    const res = await fetch(at, { signal: AbortSignal.timeout(5000), redirect: 'error' });
    if (!res.ok)
      return { problem: `MICROAPP_OIDC_ISSUER: ${at} answered HTTP ${res.status}`, misnamed: false };
    const doc = (await res.json()) as { issuer?: unknown };
    if (typeof doc.issuer !== 'string' || bare(doc.issuer) !== bare(issuer))
      return {
        problem: `MICROAPP_OIDC_ISSUER is "${issuer}" but the identity provider calls itself "${String(doc.issuer).slice(0, 200)}": set it to exactly that`,
        misnamed: true,
      };
    return null;
  } catch (error) {
    return {
      problem: `MICROAPP_OIDC_ISSUER: the identity provider's discovery document ${at} cannot be read (${(error as Error).message})`,
      misnamed: false,
    };
  }
}

/** The identity provider, asked at most every 30 seconds while it answers (probes come often). */
export function issuerCheck(issuer: () => string | null): ReadinessCheck {
  let okUntil = 0;
  return async () => {
    const current = issuer();
    if (!current || Date.now() < okUntil) return null;
    const found = await issuerProblem(current);
    if (!found) okUntil = Date.now() + 30_000;
    return found?.problem ?? null;
  };
}
