import { sign } from 'node:crypto';
import { bundleToJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder, MessageSignatureBundleBuilder, type Signer } from '@sigstore/sign';
import type { SigningKey } from './key-store.ts';

export const inTotoStatement = 'https://in-toto.io/Statement/v1';
export const slsaProvenance = 'https://slsa.dev/provenance/v1';
export const cyclonedxPredicate = 'https://cyclonedx.org/bom';
export const vulnPredicate = 'https://cosign.sigstore.dev/attestation/vuln/v1';
/** An AI agent's session that built a version: its delegation, tool calls and checkpoints (modules/agents). */
export const agentSessionPredicate = 'https://microapp.dev/attestations/agent-session/v1';
export const buildType = 'https://github.com/microapp-platform/microapp/build-types/ci/v1';

/** A Sigstore signer backed by the platform key: ECDSA P-256 over SHA-256, DER signatures, key hint = key id. */
export function platformSigner(key: SigningKey): Signer {
  return {
    async sign(data: Buffer) {
      return {
        signature: sign('sha256', data, key.privateKey),
        key: { $case: 'publicKey', publicKey: key.publicPem, hint: key.keyid },
      };
    },
  };
}

/**
 * The builder labels key-only bundles v0.2; their content is also valid v0.3 (no certificate chain,
 * no transparency log), which is the version cosign 3 writes and reads.
 */
function asV03<T extends { mediaType?: string }>(json: T): T {
  return { ...json, mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' };
}

/** A Sigstore bundle (v0.3 JSON) with a message signature over the artifact. */
export async function signArtifact(key: SigningKey, artifact: Buffer): Promise<unknown> {
  const bundle = await new MessageSignatureBundleBuilder({
    signer: platformSigner(key),
    witnesses: [],
  }).create({ data: artifact });
  return asV03(bundleToJSON(bundle));
}

/** A Sigstore bundle with a DSSE envelope of an in-toto statement about the artifact. */
export async function attest(key: SigningKey, statement: object): Promise<unknown> {
  const bundle = await new DSSEBundleBuilder({ signer: platformSigner(key), witnesses: [] }).create({
    data: Buffer.from(JSON.stringify(statement)),
    type: 'application/vnd.in-toto+json',
  });
  return asV03(bundleToJSON(bundle));
}

export function statement(
  subject: { name: string; sha256: string },
  predicateType: string,
  predicate: unknown,
) {
  return {
    _type: inTotoStatement,
    subject: [{ name: subject.name, digest: { sha256: subject.sha256 } }],
    predicateType,
    predicate,
  };
}
