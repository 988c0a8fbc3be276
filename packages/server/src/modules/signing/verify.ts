import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { canonicalJson } from '../../canonical-json.ts';

type SerializedBundle = {
  mediaType: string;
  verificationMaterial: { publicKey?: { hint?: string } };
  dsseEnvelope?: { payload: string; payloadType: string; signatures: { sig: string }[] };
};

export type VerifyReport = { ok: boolean; checks: { check: string; ok: boolean; detail: string }[] };

const payloadOf = (bundle: unknown) =>
  JSON.parse(Buffer.from((bundle as SerializedBundle).dsseEnvelope!.payload, 'base64').toString('utf8')) as {
    predicate: { buildDefinition?: { internalParameters?: { agentSession?: { predicateDigest?: string } } } };
  };

/**
 * An agent session's record, checked against the provenance that names it (the digest of the record), and
 * said in a line: who acted for whom, how many tool calls, which checkpoints and who approved them.
 */
type SessionPredicate = {
  person?: string;
  agent?: { client?: string; model?: string | null };
  calls?: { tool: string }[];
  checkpoints?: { state: string; decidedBy: string | null }[];
};

function agentSessionDetail(predicate: SessionPredicate, provenance: unknown): string {
  const named = provenance
    ? payloadOf(provenance).predicate.buildDefinition?.internalParameters?.agentSession
    : undefined;
  const digest = `sha256:${createHash('sha256').update(canonicalJson(predicate)).digest('hex')}`;
  if (!named) throw new Error('the provenance does not name an agent session');
  if (named.predicateDigest !== digest)
    throw new Error(`the provenance names session record ${named.predicateDigest}, this one is ${digest}`);
  const calls = predicate.calls ?? [];
  const checkpoints = predicate.checkpoints ?? [];
  const approved = checkpoints.filter((c) => c.state === 'approved' || c.state === 'used');
  const by = [...new Set(approved.map((c) => c.decidedBy).filter(Boolean))].join(', ');
  return `built by agent ${predicate.agent?.client} (${predicate.agent?.model ?? 'model not declared'}) for ${predicate.person}: ${calls.length} tool calls (${[...new Set(calls.map((c) => c.tool))].join(', ')}), ${approved.length} checkpoints approved${by ? ` by ${by}` : ''}`;
}

/**
 * Verifies offline, with only the public key: the artifact's message signature, and each DSSE
 * attestation's signature and subject digest (and, for provenance, the builder id).
 */
export function verifyArtifact(input: {
  artifact: Buffer;
  publicKeyPem: string;
  bundles: {
    artifact: unknown;
    provenance?: unknown;
    sbom?: unknown;
    scan?: unknown;
    agentSession?: unknown;
  };
  builderId?: string;
}): VerifyReport {
  const key = createPublicKey(input.publicKeyPem);
  const spki = key.export({ type: 'spki', format: 'der' });
  const keyid = createHash('sha256').update(spki).digest('hex');
  const trust = toTrustMaterial(
    { mediaType: '', certificateAuthorities: [], tlogs: [], ctlogs: [], timestampAuthorities: [] } as never,
    (hint) => {
      if (hint !== keyid)
        throw new Error(`the bundle was signed by key ${hint}, not by the key given (${keyid})`);
      return { publicKey: key, validFor: () => true };
    },
  );
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  const digest = createHash('sha256').update(input.artifact).digest('hex');
  const checks: VerifyReport['checks'] = [];
  const run = (check: string, fn: () => string) => {
    try {
      checks.push({ check, ok: true, detail: fn() });
    } catch (error) {
      checks.push({ check, ok: false, detail: (error as Error).message });
    }
  };

  run('artifact signature', () => {
    verifier.verify(toSignedEntity(bundleFromJSON(input.bundles.artifact), input.artifact));
    return `ECDSA P-256 signature over sha256:${digest} by key ${keyid.slice(0, 16)}…`;
  });
  for (const [name, bundle] of Object.entries(input.bundles)) {
    if (name === 'artifact' || !bundle) continue;
    run(`${name} attestation`, () => {
      const parsed = bundleFromJSON(bundle);
      verifier.verify(toSignedEntity(parsed));
      const envelope = (bundle as SerializedBundle).dsseEnvelope!;
      const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as {
        subject: { digest: { sha256: string } }[];
        predicateType: string;
        predicate: { runDetails?: { builder?: { id?: string } } };
      };
      if (!statement.subject.some((s) => s.digest.sha256 === digest))
        throw new Error(`its subject is not this artifact (sha256:${digest})`);
      if (name === 'agentSession')
        return agentSessionDetail(statement.predicate as SessionPredicate, input.bundles.provenance);
      if (name === 'provenance') {
        const builder = statement.predicate.runDetails?.builder?.id;
        if (input.builderId && builder !== input.builderId)
          throw new Error(`built by ${builder}, expected ${input.builderId}`);
        return `SLSA provenance v1, builder ${builder}`;
      }
      return `${statement.predicateType}, subject sha256:${digest.slice(0, 16)}…`;
    });
  }
  // Belt and braces: the raw ECDSA check a third-party tool (openssl) would do.
  run('raw signature (openssl-equivalent)', () => {
    const sig = Buffer.from(
      (input.bundles.artifact as { messageSignature: { signature: string } }).messageSignature.signature,
      'base64',
    );
    if (!cryptoVerify('sha256', input.artifact, key, sig))
      throw new Error('the signature does not match the artifact');
    return 'DER signature verifies with SHA-256';
  });
  return { ok: checks.every((c) => c.ok), checks };
}
