// The cluster's service-account issuer, played in tests: its key signs the pods' projected tokens as a
// kubelet would ask for them, its public keys are the JWKS file the platform is given
// (MICROAPP_KUBERNETES_TOKEN_JWKS), and a stranger's key signs tokens the platform must refuse.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export const clusterIssuerUrl = 'https://kubernetes.default.svc.cluster.local';

export type PodTokenClaims = { sub?: string; aud?: string; lifetime?: number; iss?: string };

/**
 * Writes the issuer's JWKS into `dir` and returns it with two signers: `sign` (the cluster's key) and
 * `foreign` (another key). Each takes the claims to change from a ten-minute token of `sub` for `aud`.
 */
export async function clusterIssuer(dir: string, defaults: { sub: string; aud: string }) {
  const cluster = await generateKeyPair('RS256');
  const stranger = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(cluster.publicKey)), kid: 'cluster-1', alg: 'RS256', use: 'sig' };
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  const signer =
    (key: Parameters<SignJWT['sign']>[0]) =>
    async ({
      sub = defaults.sub,
      aud = defaults.aud,
      lifetime = 600,
      iss = clusterIssuerUrl,
    }: PodTokenClaims = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        'kubernetes.io': {
          namespace: sub.split(':')[2],
          pod: { name: `${sub.split(':')[3]}-7d9f8-abcde`, uid: 'c0ffee' },
          serviceaccount: { name: sub.split(':')[3], uid: 'f00d' },
        },
      })
        .setProtectedHeader({ alg: 'RS256', kid: 'cluster-1' })
        .setIssuer(iss)
        .setAudience(aud)
        .setSubject(sub)
        .setIssuedAt(now)
        .setExpirationTime(now + lifetime)
        .sign(key);
    };
  return { jwksFile, sign: signer(cluster.privateKey), foreign: signer(stranger.privateKey) };
}
