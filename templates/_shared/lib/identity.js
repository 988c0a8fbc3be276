// Who is calling. The platform's gateway signs in the user (SSO) and forwards a short-lived signed
// identity token in the X-Microapp-Identity header; this app verifies it with the public key the
// runtime provides (MICROAPP_IDENTITY_PUBLIC_KEY, PEM). Never trust an unsigned header.
import { createPublicKey, verify } from 'node:crypto';

const publicKeyPem = process.env.MICROAPP_IDENTITY_PUBLIC_KEY;
const key = publicKeyPem ? createPublicKey(publicKeyPem) : null;
// Each token names the app it was signed for: one signed for another app is not for this one.
const audience = process.env.MICROAPP_APP;

function b64json(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** The signed-in user ({ email, name, department, roles }), or null when the request carries no valid identity. */
export function identityOf(request) {
  if (!key) {
    // Local development only: `MICROAPP_DEV_USER=alice@example.com npm start`.
    const dev = process.env.MICROAPP_DEV_USER;
    return dev ? { email: dev, name: dev, department: null, roles: [] } : null;
  }
  const token = request.headers['x-microapp-identity'];
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const header = b64json(parts[0]);
    const alg = header.alg;
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const sig = Buffer.from(parts[2], 'base64url');
    const ok =
      alg === 'EdDSA'
        ? verify(null, data, key, sig)
        : alg === 'ES256'
          ? verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
          : false;
    if (!ok) return null;
    const claims = b64json(parts[1]);
    if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return null;
    if (audience && claims.aud !== audience) return null;
    return {
      email: claims.email,
      name: claims.name ?? claims.email,
      department: claims.department ?? null,
      roles: claims.roles ?? [],
    };
  } catch {
    return null;
  }
}
