import {
  constants,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import { fromJSON, RObject, toJSON, type Value } from '../value.ts';
import { builtinError, def, obj, str } from './registry.ts';

const b64urlDecode = (s: string, what: string): Buffer => {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw builtinError(`failed to decode JWT ${what}: illegal base64 data`);
  return Buffer.from(s, 'base64url');
};

type Decoded = {
  header: Record<string, unknown>;
  payload: unknown;
  payloadRaw: string;
  signature: Buffer;
  signingInput: string;
};

function decodeToken(token: string): Decoded {
  const parts = token.split('.');
  if (parts.length === 5) throw builtinError('JWT is a JWE object, which is not supported');
  if (parts.length !== 3) throw builtinError('encoded JWT had no period separators');
  const [h, p, s] = parts as [string, string, string];
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(b64urlDecode(h, 'header').toString('utf8'));
  } catch (error) {
    throw builtinError(`JWT header had invalid encoding: ${(error as Error).message}`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header))
    throw builtinError('JWT header is not an object');
  const payloadRaw = b64urlDecode(p, 'payload').toString('utf8');
  let payload: unknown;
  if (header.cty === 'JWT') {
    payload = payloadRaw;
  } else {
    try {
      payload = JSON.parse(payloadRaw);
    } catch (error) {
      throw builtinError(`JWT payload had invalid encoding: ${(error as Error).message}`);
    }
  }
  return { header, payload, payloadRaw, signature: b64urlDecode(s, 'signature'), signingInput: `${h}.${p}` };
}

function decodeAll(token: string): { header: Value; payload: Value; signature: string } {
  let d = decodeToken(token);
  // Nested tokens (cty: JWT) are decoded down to the innermost payload.
  while (d.header.cty === 'JWT') d = decodeToken(d.payload as string);
  return { header: fromJSON(d.header), payload: fromJSON(d.payload), signature: d.signature.toString('hex') };
}

def('io.jwt.decode', 1, (args) => {
  const d = decodeAll(str(args, 0));
  return [d.header, d.payload, d.signature];
});

/** Public keys from a PEM certificate, PEM public key, JWK or JWK set. */
function publicKeys(material: string): KeyObject[] {
  const text = material.trim();
  if (text.startsWith('-----BEGIN CERTIFICATE-----')) {
    try {
      return [new X509Certificate(text).publicKey];
    } catch (error) {
      throw builtinError(`failed to parse a PEM certificate: ${(error as Error).message}`);
    }
  }
  if (text.startsWith('-----BEGIN')) {
    try {
      return [createPublicKey(text)];
    } catch (error) {
      throw builtinError(`failed to parse a PEM key: ${(error as Error).message}`);
    }
  }
  let jwk: { keys?: unknown[] } & Record<string, unknown>;
  try {
    jwk = JSON.parse(text);
  } catch {
    throw builtinError('failed to parse a JWK key (set)');
  }
  const list = Array.isArray(jwk.keys) ? jwk.keys : [jwk];
  return list.map((k) => {
    try {
      return createPublicKey({ key: k as never, format: 'jwk' });
    } catch (error) {
      throw builtinError(`failed to parse a JWK key: ${(error as Error).message}`);
    }
  });
}

const hashes: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

function verifyWith(alg: string, d: Decoded, material: string): boolean {
  const data = Buffer.from(d.signingInput);
  const family = alg.slice(0, 2);
  const hash = hashes[alg.slice(2)];
  if (family === 'HS') {
    const mac = createHmac(hash!, material).update(data).digest();
    return mac.length === d.signature.length && mac.equals(d.signature);
  }
  const keys = publicKeys(material);
  for (const key of keys) {
    try {
      let ok = false;
      if (alg === 'EdDSA') ok = verify(null, data, key, d.signature);
      else if (family === 'RS') ok = verify(hash!, data, key, d.signature);
      else if (family === 'PS')
        ok = verify(
          hash!,
          data,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
          d.signature,
        );
      else if (family === 'ES') ok = verify(hash!, data, { key, dsaEncoding: 'ieee-p1363' }, d.signature);
      if (ok) return true;
    } catch {
      // A key of another type cannot verify this token; try the next.
    }
  }
  return false;
}

for (const alg of [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
]) {
  const name = alg === 'EdDSA' ? 'io.jwt.verify_eddsa' : `io.jwt.verify_${alg.toLowerCase()}`;
  def(name, 2, (args) => verifyWith(alg, decodeToken(str(args, 0)), str(args, 1)));
}

def('io.jwt.decode_verify', 2, (args, ctx) => {
  const token = str(args, 0);
  const c = obj(args, 1);
  const invalid = [false, new RObject(), new RObject()];
  const constraints = toJSON(c) as Record<string, unknown>;
  for (const k of Object.keys(constraints))
    if (!['cert', 'secret', 'alg', 'iss', 'aud', 'time'].includes(k))
      throw builtinError(`unknown token validation constraint: ${k}`);
  if (constraints.cert === undefined && constraints.secret === undefined)
    throw builtinError('no key or secret given');
  let d: Decoded;
  try {
    d = decodeToken(token);
  } catch {
    return invalid;
  }
  const alg = d.header.alg;
  if (typeof alg !== 'string') return invalid;
  if (typeof constraints.alg === 'string' && constraints.alg !== alg) return invalid;
  const material = (alg.startsWith('HS') ? constraints.secret : constraints.cert) as string | undefined;
  if (typeof material !== 'string') return invalid;
  if (!verifyWith(alg, d, material)) return invalid;
  // Nested tokens: verify the outer, return the innermost claims.
  let inner = d;
  while (inner.header.cty === 'JWT') {
    inner = decodeToken(inner.payload as string);
    const a = inner.header.alg as string;
    const m = (a?.startsWith('HS') ? constraints.secret : constraints.cert) as string | undefined;
    if (!a || typeof m !== 'string' || !verifyWith(a, inner, m)) return invalid;
  }
  const payload = inner.payload as Record<string, unknown>;
  if (!payload || typeof payload !== 'object') return invalid;
  const now = typeof constraints.time === 'number' ? constraints.time : Number(ctx.now);
  const nowSec = now / 1e9;
  if (payload.exp !== undefined) {
    if (typeof payload.exp !== 'number') throw builtinError('exp value must be a number');
    if (nowSec >= payload.exp) return invalid;
  }
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== 'number') throw builtinError('nbf value must be a number');
    if (nowSec < payload.nbf) return invalid;
  }
  if (typeof constraints.iss === 'string' && payload.iss !== constraints.iss) return invalid;
  const aud = payload.aud;
  if (typeof constraints.aud === 'string') {
    const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!list.includes(constraints.aud)) return invalid;
  } else if (aud !== undefined) return invalid;
  return [true, fromJSON(inner.header), fromJSON(payload)];
});

function privateKeyFromJwk(jwk: Record<string, unknown>): KeyObject | Buffer {
  if (jwk.kty === 'oct') {
    if (typeof jwk.k !== 'string') throw builtinError('invalid oct key');
    return Buffer.from(jwk.k, 'base64url');
  }
  try {
    return createPrivateKey({ key: jwk as never, format: 'jwk' });
  } catch (error) {
    throw builtinError(`invalid key: ${(error as Error).message}`);
  }
}

function signToken(
  headerText: string,
  payloadText: string,
  keyText: string,
  headerObj: Record<string, unknown>,
): string {
  const alg = headerObj.alg;
  if (typeof alg !== 'string') throw builtinError('missing alg in JWS header');
  let jwk: Record<string, unknown>;
  try {
    jwk = JSON.parse(keyText);
  } catch {
    throw builtinError('invalid JWK');
  }
  const input = `${Buffer.from(headerText).toString('base64url')}.${Buffer.from(payloadText).toString('base64url')}`;
  const key = privateKeyFromJwk(jwk);
  const hash = hashes[alg.slice(2)];
  let sig: Buffer;
  if (alg.startsWith('HS')) {
    if (!hash) throw builtinError(`unknown signature algorithm ${alg}`);
    sig = createHmac(hash, key as Buffer)
      .update(input)
      .digest();
  } else if (alg === 'EdDSA') sig = sign(null, Buffer.from(input), key as KeyObject);
  else if (alg.startsWith('RS') && hash) sig = sign(hash, Buffer.from(input), key as KeyObject);
  else if (alg.startsWith('PS') && hash)
    sig = sign(hash, Buffer.from(input), {
      key: key as KeyObject,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    });
  else if (alg.startsWith('ES') && hash)
    sig = sign(hash, Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else throw builtinError(`unknown signature algorithm ${alg}`);
  return `${input}.${sig.toString('base64url')}`;
}

def('io.jwt.encode_sign_raw', 3, (args) => {
  const header = str(args, 0);
  const payload = str(args, 1);
  const key = str(args, 2);
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(header);
  } catch {
    throw builtinError('invalid JWS header: not JSON');
  }
  if (!h || typeof h !== 'object' || Array.isArray(h)) throw builtinError('invalid JWS header');
  if (h.cty !== 'text/plain' && h.typ !== undefined && typeof h.typ !== 'string')
    throw builtinError('invalid typ');
  if (payload === '' && h.cty !== 'text/plain') {
    // An empty payload is allowed only for plain text media.
  }
  if (h.cty !== 'text/plain') {
    try {
      JSON.parse(payload);
    } catch {
      throw builtinError('invalid JWS payload: not JSON');
    }
  }
  return signToken(header, payload, key, h);
});
def('io.jwt.encode_sign', 3, (args) => {
  const header = obj(args, 0);
  const payload = obj(args, 1);
  const key = obj(args, 2);
  const h = toJSON(header) as Record<string, unknown>;
  return signToken(JSON.stringify(h), JSON.stringify(toJSON(payload)), JSON.stringify(toJSON(key)), h);
});
