import {
  createECDH,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { SignJWT } from 'jose';

/** The key the gateway signs each request's X-Microapp-Identity with (ES256), and its public half. */
export type IdentityKey = { privateKey: KeyObject; publicPem: string };

// The order of P-256's base point: a private scalar must lie in [1, n - 1].
const p256Order = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

/**
 * The identity signing key, derived from the KEK (HKDF-SHA256), so that it is the same after a restart and
 * on every replica: an app started by one server verifies what another server's gateway signed. A fresh
 * random key per process (the old behaviour) broke both.
 */
export function identitySigningKey(kek: Buffer): IdentityKey {
  const okm = Buffer.from(hkdfSync('sha256', kek, 'microapp', 'gateway-identity-es256', 48));
  // 384 bits reduced modulo n - 1, plus one: uniform enough (bias below 2^-128) and never zero.
  const scalar = (BigInt(`0x${okm.toString('hex')}`) % (p256Order - 1n)) + 1n;
  const d = Buffer.from(scalar.toString(16).padStart(64, '0'), 'hex');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(d);
  const point = ecdh.getPublicKey(); // 0x04 || x || y
  const privateKey = createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: d.toString('base64url'),
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  });
  return {
    privateKey,
    publicPem: createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString(),
  };
}

/** Who is calling, as the gateway tells the app. */
export type IdentityClaims = { email: string; name: string; department: string | null; roles: string[] };

export type IdentitySigner = {
  /** A short-lived signed statement of who is calling, for the app (X-Microapp-Identity, ES256, 60 s). */
  token: (user: IdentityClaims, app: string) => Promise<string>;
  publicPem: () => string;
};

/** How long a token lives, and how long the gateway hands out the same one before it signs a new one. */
export const identityLifetimeSeconds = 60;
const reuseMs = 30_000;
const cacheLimit = 10_000;

/**
 * Signs identities with `key` (or a key of this process, for tests). The same user calling the same app
 * with the same claims gets the same token for 30 s of its 60 s: signing ES256 on every request was a
 * quarter of the gateway's CPU. A token is never handed out with less than 30 s left, and any change of
 * claims (department, roles, name) signs a new one at once. Access is still decided per request.
 */
export function createIdentitySigner(key?: IdentityKey, now: () => number = Date.now): IdentitySigner {
  let k = key;
  if (!k) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    k = {
      privateKey: pair.privateKey,
      publicPem: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    };
  }
  const signing = k;
  const cache = new Map<string, { token: string; signedAt: number }>();
  return {
    publicPem: () => signing.publicPem,
    async token(user, app) {
      const cacheKey = JSON.stringify([app, user.email, user.name, user.department, user.roles]);
      const at = now();
      const hit = cache.get(cacheKey);
      if (hit && at - hit.signedAt < reuseMs && at >= hit.signedAt) return hit.token;
      const iat = Math.floor(at / 1000);
      const token = await new SignJWT({
        email: user.email,
        name: user.name,
        department: user.department,
        roles: user.roles,
      })
        .setProtectedHeader({ alg: 'ES256' })
        .setSubject(user.email)
        .setAudience(app)
        .setIssuedAt(iat)
        .setExpirationTime(iat + identityLifetimeSeconds)
        .sign(signing.privateKey);
      if (cache.size >= cacheLimit) cache.clear();
      cache.set(cacheKey, { token, signedAt: iat * 1000 });
      return token;
    },
  };
}
