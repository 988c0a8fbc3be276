import { createHmac, timingSafeEqual } from 'node:crypto';

/** A pull (merge) request event as the platform acts on it, whichever host sent it. */
export type HostEvent = {
  /** The host's id for the repository: `owner/name` on GitHub, the project id on GitLab. */
  repoId: string;
  number: number;
  action: 'opened' | 'updated' | 'closed' | 'merged';
  branch: string;
  base: string;
  head: string;
  title: string;
  url: string;
  /** Who did it at the host (their login there; not a platform identity). */
  sender: string;
};

type Headers = Record<string, string | string[] | undefined>;
const header = (h: Headers, name: string) => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * Whether a delivery comes from the host that shares the secret. GitHub signs the exact bytes of the body
 * (`X-Hub-Signature-256: sha256=HMAC`); GitLab sends the secret itself (`X-Gitlab-Token`), so a GitLab
 * webhook must be set to an https URL. Both compared in constant time.
 */
export function verifyDelivery(kind: 'github' | 'gitlab', secret: string, headers: Headers, body: Buffer) {
  if (kind === 'github') {
    const signature = header(headers, 'x-hub-signature-256') ?? '';
    const expected = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    return same(signature, expected);
  }
  return same(header(headers, 'x-gitlab-token') ?? '', secret);
}

const text = (v: unknown, max = 400) => (typeof v === 'string' && v.length <= max ? v : null);
const sha = (v: unknown) => (typeof v === 'string' && /^[0-9a-f]{40}$/.test(v) ? v : null);
const branchName = (v: unknown) =>
  typeof v === 'string' && /^[A-Za-z0-9._/-]{1,200}$/.test(v) && !v.includes('..') ? v : null;

/**
 * The pull (merge) request event in a verified delivery, or null for events the platform does not act on
 * (pushes, comments, a ping) and for payloads that do not hold what an event must.
 */
export function parseDelivery(
  kind: 'github' | 'gitlab',
  headers: Headers,
  payload: unknown,
): HostEvent | null {
  if (!payload || typeof payload !== 'object') return null;
  const at = (...path: string[]) =>
    path.reduce<unknown>(
      (v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
      payload,
    );
  const positive = (v: unknown) => (Number.isInteger(v) && (v as number) > 0 ? (v as number) : null);
  if (kind === 'github') {
    if (header(headers, 'x-github-event') !== 'pull_request') return null;
    const actions: Record<string, HostEvent['action']> = {
      opened: 'opened',
      reopened: 'opened',
      synchronize: 'updated',
      closed: at('pull_request', 'merged') === true ? 'merged' : 'closed',
    };
    return complete({
      repoId: text(at('repository', 'full_name'), 200),
      number: positive(at('number')),
      action: actions[String(at('action'))],
      branch: branchName(at('pull_request', 'head', 'ref')),
      base: branchName(at('pull_request', 'base', 'ref')),
      head: sha(at('pull_request', 'head', 'sha')),
      title: text(at('pull_request', 'title')) ?? '',
      url: text(at('pull_request', 'html_url'), 2000) ?? '',
      sender: text(at('sender', 'login'), 100) ?? 'someone',
    });
  }
  if (header(headers, 'x-gitlab-event') !== 'Merge Request Hook') return null;
  const actions: Record<string, HostEvent['action']> = {
    open: 'opened',
    reopen: 'opened',
    update: 'updated',
    close: 'closed',
    merge: 'merged',
  };
  const project = positive(at('project', 'id'));
  return complete({
    repoId: project ? String(project) : null,
    number: positive(at('object_attributes', 'iid')),
    action: actions[String(at('object_attributes', 'action'))],
    branch: branchName(at('object_attributes', 'source_branch')),
    base: branchName(at('object_attributes', 'target_branch')),
    head: sha(at('object_attributes', 'last_commit', 'id')),
    title: text(at('object_attributes', 'title')) ?? '',
    url: text(at('object_attributes', 'url'), 2000) ?? '',
    sender: text(at('user', 'username'), 100) ?? 'someone',
  });
}

function complete(
  e: {
    [K in keyof HostEvent]: HostEvent[K] | null | undefined;
  },
): HostEvent | null {
  if (!e.repoId || !e.number || !e.action || !e.branch || !e.base || !e.head) return null;
  return e as HostEvent;
}
