import { createECDH, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';

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
