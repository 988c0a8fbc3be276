import type { IncomingMessage } from 'node:http';
import type { Manifest } from '../catalog/manifest-schema.ts';
import {
  type DlpFinding,
  type DlpKind,
  dlpClassFor,
  inspect,
  looksLikeCsv,
  readBody,
  requestText,
} from './dlp.ts';
import type { BrokeredApp, EgressDecision } from './egress-types.ts';

/** What the broker asks the `microapp.dlp` pack about one request whose body holds something. */
export type DlpInput = {
  request: {
    method: 'egress';
    host: string;
    scheme: string;
    verb: string;
    path: string;
    connector?: string;
    csv: boolean;
  };
  destination: { type: 'connector' | 'host'; name: string; dataClasses: string[] };
  findings: { kind: DlpKind; count: number; dataClass: string; permitted: boolean }[];
  manifest: Manifest;
  app: { name: string; owner: string; department: string | null; tier: string };
};

/** Its answer: kinds (or the pack's own reasons, such as `csv_export`) to block, mask and flag. */
export type DlpVerdict = { block: string[]; mask: string[]; flag: string[] };

/**
 * The `microapp.dlp` pack's result as a verdict. Without one (no policy engine, or no pack: an organization
 * cannot remove it, but be strict anyway) what the destination may not receive is blocked.
 */
export function dlpVerdictOf(result: unknown, input: DlpInput): DlpVerdict {
  if (!result || typeof result !== 'object')
    return { block: input.findings.filter((f) => !f.permitted).map((f) => f.kind), mask: [], flag: [] };
  const r = result as Record<string, unknown>;
  const kinds = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  return { block: kinds(r.block), mask: kinds(r.mask), flag: kinds(r.flag) };
}

type Refusal = Extract<EgressDecision, { allowed: false }>;

/**
 * DLP at the egress broker: everything a request carries out (its path and query string, its headers and
 * its body, decoded and normalised; see dlp.ts) is read, and the `microapp.dlp` pack decides.
 */
export function createDlpCheck(deps: {
  dlp?: ((input: DlpInput, app: string) => Promise<DlpVerdict>) | undefined;
  maxBody: number;
}) {
  const kindName = (kind: string) => kind.replace('_', ' ');
  const described = (fs: DlpFinding[]) =>
    fs.map((f) => `${kindName(f.kind)} (${f.count}: ${f.samples.join(', ')})`).join(' and ');

  /**
   * DLP on a request's body: what it holds (card numbers, IBANs, national identifiers, e-mail addresses;
   * whether it is a CSV file) and, when it holds any, the `microapp.dlp` pack's answer: a refusal that
   * names what was found (masked) and why, or the body to send (masked where the pack said so) and what
   * was masked or flagged.
   */
  return async function check(
    app: BrokeredApp,
    req: IncomingMessage,
    body: Buffer,
    at: {
      asked: string;
      scheme: string;
      path: string;
      mayReceive: Set<string>;
      connector: { id: string; dataClasses: string[] } | null;
    },
  ): Promise<Refusal | Pick<Extract<EgressDecision, { allowed: true }>, 'body' | 'dlp'>> {
    const read = body.length
      ? readBody(
          body,
          {
            'content-encoding': req.headers['content-encoding'],
            'content-type': req.headers['content-type'],
          },
          deps.maxBody * 4,
        )
      : { text: '', mask: null };
    if (read.text === null)
      return {
        allowed: false,
        status: 415,
        host: at.asked,
        reason: `the broker reads every request body it sends, and cannot read this one (Content-Encoding: ${req.headers['content-encoding']}): send it uncompressed or as gzip, deflate or br`,
      };
    // The path, the query string and the headers leave too: read decoded, never masked (a finding there
    // that the pack would mask is refused instead).
    const meta = requestText(at.path, req.headers);
    const inMeta = inspect(meta);
    const findings = inspect(`${read.text}\n${meta}`);
    const csv = looksLikeCsv(req.headers['content-type'], at.path, read.text);
    if (!findings.length && !csv) return {};
    const input: DlpInput = {
      request: {
        method: 'egress',
        host: at.asked,
        scheme: at.scheme,
        verb: (req.method ?? 'GET').toUpperCase(),
        path: at.path,
        ...(at.connector ? { connector: at.connector.id } : {}),
        csv,
      },
      destination: at.connector
        ? { type: 'connector', name: at.connector.id, dataClasses: at.connector.dataClasses }
        : { type: 'host', name: at.asked, dataClasses: [] },
      findings: findings.map((f) => ({
        kind: f.kind,
        count: f.count,
        dataClass: dlpClassFor[f.kind],
        permitted: at.mayReceive.has(dlpClassFor[f.kind]),
      })),
      manifest: app.manifest,
      app: { name: app.name, owner: app.owner, department: app.department, tier: app.tier },
    };
    const verdict = deps.dlp ? await deps.dlp(input, app.name) : dlpVerdictOf(null, input);
    const of = (kinds: string[]) => findings.filter((f) => kinds.includes(f.kind));
    const blocked = of(verdict.block);
    const masked = of(verdict.mask).filter((f) => !verdict.block.includes(f.kind));
    const flagged = of(verdict.flag).filter(
      (f) => !verdict.block.includes(f.kind) && !verdict.mask.includes(f.kind),
    );
    const others = verdict.block.filter((k) => !(k in dlpClassFor));
    const to = at.connector ? `the connector ${at.connector.id}` : at.asked;
    if (blocked.length || others.length) {
      const reasons: string[] = [];
      if (blocked.length) {
        const classes = [...new Set(blocked.map((f) => dlpClassFor[f.kind]))];
        const needed = `${classes.join(' and ')} data class${classes.length > 1 ? 'es' : ''}`;
        const unpermitted = blocked.some((f) => !at.mayReceive.has(dlpClassFor[f.kind]));
        reasons.push(
          `the request carries ${described(blocked)}, which ${
            unpermitted
              ? `${app.name} may not send to ${to} (it would need the ${needed}${at.connector ? ' on both' : ''})`
              : `the organization's DLP policy does not let ${app.name} send to ${to}`
          }`,
        );
      }
      for (const k of others)
        reasons.push(
          k === 'csv_export'
            ? `${app.name} handles personal data and this is a CSV export to ${to}, which is not approved for personal data (pii)`
            : `the organization's DLP policy refuses it (${k})`,
        );
      return { allowed: false, status: 451, host: at.asked, findings: blocked, reason: reasons.join('; ') };
    }
    const mask = read.mask;
    const maskedBody =
      masked.length && mask && !inMeta.some((f) => masked.some((m) => m.kind === f.kind))
        ? mask(new Set(masked.map((f) => f.kind)))
        : null;
    if (masked.length && !maskedBody)
      return {
        allowed: false,
        status: 451,
        host: at.asked,
        findings: masked,
        reason: `the request carries ${described(masked)}, which the organization's DLP policy masks before it goes to ${to}, and ${inMeta.length ? 'it is in the address or a header, which the broker does not rewrite: send it in the body' : 'the body is not text the broker can mask: send it as text'}`,
      };
    return {
      ...(maskedBody ? { body: maskedBody } : {}),
      ...(masked.length || flagged.length ? { dlp: { masked, flagged } } : {}),
    };
  };
}
