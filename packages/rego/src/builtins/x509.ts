/**
 * crypto.x509.* and crypto.parse_private_keys. Certificates are parsed by @peculiar/x509 and verified with
 * Node's X509Certificate; what a policy sees has the field names and value shapes of Go's x509.Certificate
 * as OPA serializes it (absent lists are null, as Go's nil slices are), plus OPA's URIStrings.
 */
import 'reflect-metadata';
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  X509Certificate as NodeCertificate,
} from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Name as AsnName } from '@peculiar/asn1-x509';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsagesExtension,
  type Name,
  Pkcs10CertificateRequest,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
} from '@peculiar/x509';
import { BigNum, fromJSON, RObject, type Value } from '../value.ts';
import { builtinError, def, obj, str } from './registry.ts';

type Json = Record<string, unknown>;

const big = (hex: string): number | BigNum => {
  const b = BigInt(`0x${hex || '0'}`);
  return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : new BigNum(b);
};
const b64urlToBig = (s: string) => big(Buffer.from(s, 'base64url').toString('hex'));
const b64 = (data: ArrayBuffer | Uint8Array) => Buffer.from(data as ArrayBuffer).toString('base64');

const nameFields: Record<string, string> = {
  '2.5.4.6': 'Country',
  '2.5.4.10': 'Organization',
  '2.5.4.11': 'OrganizationalUnit',
  '2.5.4.7': 'Locality',
  '2.5.4.8': 'Province',
  '2.5.4.9': 'StreetAddress',
  '2.5.4.17': 'PostalCode',
};

/** A distinguished name as Go's pkix.Name. */
function pkixName(name: Name): Json {
  const out: Json = {
    Country: null,
    Organization: null,
    OrganizationalUnit: null,
    Locality: null,
    Province: null,
    StreetAddress: null,
    PostalCode: null,
    SerialNumber: '',
    CommonName: '',
    Names: [] as Json[],
    ExtraNames: null,
  };
  for (const rdn of AsnConvert.parse(name.toArrayBuffer(), AsnName))
    for (const attr of rdn) {
      const value = attr.value.toString();
      (out.Names as Json[]).push({ Type: attr.type.split('.').map(Number), Value: value });
      const field = nameFields[attr.type];
      if (field) out[field] = [...((out[field] as string[] | null) ?? []), value];
      else if (attr.type === '2.5.4.3') out.CommonName = value;
      else if (attr.type === '2.5.4.5') out.SerialNumber = value;
    }
  if ((out.Names as Json[]).length === 0) out.Names = null;
  return out;
}

const extKeyUsages: Record<string, number> = {
  '2.5.29.37.0': 0,
  '1.3.6.1.5.5.7.3.1': 1,
  '1.3.6.1.5.5.7.3.2': 2,
  '1.3.6.1.5.5.7.3.3': 3,
  '1.3.6.1.5.5.7.3.4': 4,
  '1.3.6.1.5.5.7.3.5': 5,
  '1.3.6.1.5.5.7.3.6': 6,
  '1.3.6.1.5.5.7.3.7': 7,
  '1.3.6.1.5.5.7.3.8': 8,
  '1.3.6.1.5.5.7.3.9': 9,
  '1.3.6.1.4.1.311.10.3.3': 10,
  '2.16.840.1.113730.4.1': 11,
  '1.3.6.1.4.1.311.2.1.22': 12,
  '1.3.6.1.4.1.311.61.1.1': 13,
};

/** Go's x509.SignatureAlgorithm numbers, from the WebCrypto description @peculiar/x509 gives. */
function signatureAlgorithm(alg: { name: string; hash?: { name: string } }): number {
  const hash = alg.hash?.name ?? '';
  const table: Record<string, Record<string, number>> = {
    'RSASSA-PKCS1-v1_5': { 'SHA-1': 3, 'SHA-256': 4, 'SHA-384': 5, 'SHA-512': 6 },
    'RSA-PSS': { 'SHA-256': 13, 'SHA-384': 14, 'SHA-512': 15 },
    ECDSA: { 'SHA-1': 9, 'SHA-256': 10, 'SHA-384': 11, 'SHA-512': 12 },
  };
  if (alg.name === 'Ed25519') return 16;
  return table[alg.name]?.[hash] ?? 0;
}

/** A public key as Go serializes it: RSA {N, E}, ECDSA {Curve, X, Y}, Ed25519 its bytes. */
function goPublicKey(key: KeyObject): [number, unknown] {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty === 'RSA') return [1, { N: b64urlToBig(jwk.n!), E: b64urlToBig(jwk.e!) }];
  if (jwk.kty === 'EC') return [3, { Curve: {}, X: b64urlToBig(jwk.x!), Y: b64urlToBig(jwk.y!) }];
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519')
    return [4, Buffer.from(jwk.x!, 'base64url').toString('base64')];
  return [0, null];
}

function certificateJson(cert: X509Certificate): Json {
  const node = new NodeCertificate(Buffer.from(cert.rawData));
  const [publicKeyAlgorithm, publicKey] = goPublicKey(node.publicKey);
  const out: Json = {
    Raw: b64(cert.rawData),
    Signature: b64(cert.signature),
    SignatureAlgorithm: signatureAlgorithm(
      cert.signatureAlgorithm as { name: string; hash?: { name: string } },
    ),
    PublicKeyAlgorithm: publicKeyAlgorithm,
    PublicKey: publicKey,
    Version: 3,
    SerialNumber: big(cert.serialNumber),
    Issuer: pkixName(cert.issuerName),
    Subject: pkixName(cert.subjectName),
    NotBefore: cert.notBefore.toISOString().replace('.000Z', 'Z'),
    NotAfter: cert.notAfter.toISOString().replace('.000Z', 'Z'),
    KeyUsage: 0,
    Extensions: cert.extensions.map((e) => ({
      Id: e.type.split('.').map(Number),
      Critical: e.critical,
      Value: b64(e.value),
    })),
    ExtKeyUsage: null,
    UnknownExtKeyUsage: null,
    BasicConstraintsValid: false,
    IsCA: false,
    MaxPathLen: -1,
    MaxPathLenZero: false,
    SubjectKeyId: null,
    AuthorityKeyId: null,
    DNSNames: null,
    EmailAddresses: null,
    IPAddresses: null,
    URIs: null,
    URIStrings: null,
  };
  const push = (field: string, v: unknown) => {
    out[field] = [...((out[field] as unknown[] | null) ?? []), v];
  };
  for (const e of cert.extensions) {
    if (e instanceof KeyUsagesExtension) out.KeyUsage = e.usages;
    else if (e instanceof BasicConstraintsExtension) {
      out.BasicConstraintsValid = true;
      out.IsCA = e.ca;
      if (e.pathLength !== undefined) {
        out.MaxPathLen = e.pathLength;
        out.MaxPathLenZero = e.pathLength === 0;
      }
    } else if (e instanceof ExtendedKeyUsageExtension)
      for (const u of e.usages) {
        const known = extKeyUsages[String(u)];
        if (known === undefined) push('UnknownExtKeyUsage', String(u).split('.').map(Number));
        else push('ExtKeyUsage', known);
      }
    else if (e instanceof SubjectKeyIdentifierExtension)
      out.SubjectKeyId = Buffer.from(e.keyId, 'hex').toString('base64');
    else if (e instanceof AuthorityKeyIdentifierExtension && e.keyId)
      out.AuthorityKeyId = Buffer.from(e.keyId, 'hex').toString('base64');
    else if (e instanceof SubjectAlternativeNameExtension)
      for (const n of e.names.items) {
        if (n.type === 'dns') push('DNSNames', n.value);
        else if (n.type === 'email') push('EmailAddresses', n.value);
        else if (n.type === 'ip') push('IPAddresses', n.value);
        else if (n.type === 'url') push('URIStrings', n.value);
      }
  }
  return out;
}

/** The DER items of a buffer holding one or more DER SEQUENCEs one after another. */
function splitDer(der: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < der.length) {
    if (der[at] !== 0x30 || at + 2 > der.length) throw builtinError('x509: malformed certificate');
    let len = der[at + 1]!;
    let head = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || at + 2 + n > der.length) throw builtinError('x509: malformed certificate');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[at + 2 + i]!;
      head = 2 + n;
    }
    if (at + head + len > der.length) throw builtinError('x509: malformed certificate');
    out.push(der.subarray(at, at + head + len));
    at += head + len;
  }
  return out;
}

/** The bytes of a Buffer as an ArrayBuffer of their own (a Buffer may share a larger pool). */
const arrayBufferOf = (b: Buffer): ArrayBuffer => Uint8Array.prototype.slice.call(b).buffer as ArrayBuffer;

const pemBlock = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

function pemBlocks(text: string): { type: string; der: Buffer }[] {
  return [...text.matchAll(pemBlock)].map((m) => ({
    type: m[1]!,
    der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'),
  }));
}

/** Strict standard base64, as Go's base64.StdEncoding decodes it. */
function decodeBase64(text: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0)
    throw builtinError('illegal base64 data');
  return Buffer.from(text, 'base64');
}

function parseCertificates(input: string): X509Certificate[] {
  let ders: Buffer[];
  const fromPem = (text: string) => {
    const blocks = pemBlocks(text);
    const wrong = blocks.find((b) => b.type !== 'CERTIFICATE');
    if (wrong) throw builtinError(`PEM block type is '${wrong.type}', expected CERTIFICATE`);
    return blocks.map((b) => b.der);
  };
  if (input.startsWith('-----BEGIN')) ders = fromPem(input);
  else {
    const raw = decodeBase64(input);
    ders = raw.subarray(0, 10).toString('latin1').startsWith('-----BEGIN')
      ? fromPem(raw.toString('utf8'))
      : splitDer(raw);
  }
  return ders.map((der) => {
    try {
      return new X509Certificate(arrayBufferOf(der));
    } catch {
      throw builtinError('x509: malformed certificate');
    }
  });
}

/** Go's Verify, for a chain given root first and leaf last: the first chain it finds, leaf to root. */
function verifyChain(
  certs: X509Certificate[],
  nowMs: number,
  dnsName?: string,
  usages?: number[],
): X509Certificate[] {
  if (certs.length < 2) throw builtinError('must supply at least two certificates to be able to verify');
  const nodes = new Map(certs.map((c) => [c, new NodeCertificate(Buffer.from(c.rawData))]));
  const json = new Map(certs.map((c) => [c, certificateJson(c)]));
  const root = certs[0]!;
  const intermediates = certs.slice(1, -1);
  const leaf = certs[certs.length - 1]!;
  const inTime = (c: X509Certificate) => c.notBefore.getTime() <= nowMs && nowMs <= c.notAfter.getTime();
  const wanted = usages && usages.length > 0 ? usages : [1];
  const usable = (c: X509Certificate) => {
    const eku = json.get(c)!.ExtKeyUsage as number[] | null;
    if (!eku && !json.get(c)!.UnknownExtKeyUsage) return true;
    return (eku ?? []).includes(0) || wanted.includes(0) || wanted.some((u) => (eku ?? []).includes(u));
  };
  const signedBy = (child: X509Certificate, parent: X509Certificate) => {
    const c = nodes.get(child)!;
    const p = nodes.get(parent)!;
    return c.checkIssued(p) && c.verify(p.publicKey);
  };
  if (!inTime(leaf) || !usable(leaf))
    throw builtinError('x509: certificate is not valid for the requested use or time');
  if (dnsName && !nodes.get(leaf)!.checkHost(dnsName))
    throw builtinError(`x509: certificate is not valid for ${dnsName}`);
  const walk = (cert: X509Certificate, chain: X509Certificate[]): X509Certificate[] | null => {
    if (signedBy(cert, root) && inTime(root)) return [...chain, root];
    for (const next of intermediates) {
      if (chain.includes(next) || next === cert) continue;
      const j = json.get(next)!;
      if (!j.BasicConstraintsValid || !j.IsCA || !inTime(next) || !usable(next)) continue;
      if (signedBy(cert, next)) {
        const found = walk(next, [...chain, next]);
        if (found) return found;
      }
    }
    return null;
  };
  const chain = walk(leaf, [leaf]);
  if (!chain) throw builtinError('x509: certificate signed by unknown authority');
  return chain;
}

def('crypto.x509.parse_certificates', 1, (args) =>
  fromJSON(parseCertificates(str(args, 0)).map(certificateJson)),
);

def('crypto.x509.parse_and_verify_certificates', 1, (args, ctx) => {
  try {
    const chain = verifyChain(parseCertificates(str(args, 0)), Number(ctx.now / 1_000_000n));
    return [true, fromJSON(chain.map(certificateJson))];
  } catch {
    return [false, []];
  }
});

const usageNames: Record<string, number> = {
  KeyUsageAny: 0,
  KeyUsageServerAuth: 1,
  KeyUsageClientAuth: 2,
  KeyUsageCodeSigning: 3,
  KeyUsageEmailProtection: 4,
  KeyUsageIPSECEndSystem: 5,
  KeyUsageIPSECTunnel: 6,
  KeyUsageIPSECUser: 7,
  KeyUsageTimeStamping: 8,
  KeyUsageOCSPSigning: 9,
  KeyUsageMicrosoftServerGatedCrypto: 10,
  KeyUsageNetscapeServerGatedCrypto: 11,
  KeyUsageMicrosoftCommercialCodeSigning: 12,
  KeyUsageMicrosoftKernelCodeSigning: 13,
};

def('crypto.x509.parse_and_verify_certificates_with_options', 2, (args, ctx) => {
  const input = str(args, 0);
  const options = obj(args, 1);
  let nowMs = Number(ctx.now / 1_000_000n);
  let dnsName: string | undefined;
  const usages: number[] = [];
  for (const [k, v] of options.sortedEntries()) {
    if (k === 'DNSName') {
      if (typeof v !== 'string') throw builtinError("'DNSName' should be a string");
      dnsName = v;
    } else if (k === 'CurrentTime') {
      if (typeof v !== 'number' && !(v instanceof BigNum))
        throw builtinError("'CurrentTime' should be a number");
      nowMs = Number((v instanceof BigNum ? v.big : BigInt(Math.trunc(v))) / 1_000_000n);
    } else if (k === 'MaxConstraintComparisons') {
      if (typeof v !== 'number') throw builtinError("'MaxConstraintComparisons' should be a number");
    } else if (k === 'KeyUsages') {
      const list = Array.isArray(v)
        ? v
        : v instanceof RObject
          ? null
          : (v as { sorted?: () => Value[] }).sorted?.();
      if (!list) throw builtinError("'KeyUsages' should be an Array or Set");
      const invalid = list.filter((u) => typeof u !== 'string' || usageNames[u] === undefined);
      if (invalid.length) throw builtinError(`invalid entries for 'KeyUsages' found: [${invalid.join(' ')}]`);
      for (const u of list) usages.push(usageNames[u as string]!);
    } else throw builtinError('invalid key option');
  }
  let certs: X509Certificate[];
  try {
    certs = parseCertificates(input);
  } catch {
    return [false, []];
  }
  try {
    return [true, fromJSON(verifyChain(certs, nowMs, dnsName, usages).map(certificateJson))];
  } catch {
    return [false, []];
  }
});

def('crypto.x509.parse_certificate_request', 1, (args) => {
  const input = str(args, 0);
  let der: Buffer;
  if (input.startsWith('-----BEGIN CERTIFICATE REQUEST-----'))
    der = pemBlocks(input)[0]?.der ?? Buffer.alloc(0);
  else {
    const raw = decodeBase64(input);
    const blocks = raw.toString('latin1').startsWith('-----BEGIN') ? pemBlocks(raw.toString('utf8')) : [];
    if (blocks[0] && blocks[0].type !== 'CERTIFICATE REQUEST')
      throw builtinError('invalid PEM-encoded certificate signing request');
    der = blocks[0]?.der ?? raw;
  }
  let csr: Pkcs10CertificateRequest;
  try {
    csr = new Pkcs10CertificateRequest(arrayBufferOf(der));
  } catch {
    throw builtinError('asn1: structure error: the certificate request is malformed');
  }
  const [publicKeyAlgorithm, publicKey] = goPublicKey(
    createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' }),
  );
  const dns: string[] = [];
  const emails: string[] = [];
  const ips: string[] = [];
  const uris: string[] = [];
  for (const e of csr.extensions)
    if (e instanceof SubjectAlternativeNameExtension)
      for (const n of e.names.items) {
        if (n.type === 'dns') dns.push(n.value);
        else if (n.type === 'email') emails.push(n.value);
        else if (n.type === 'ip') ips.push(n.value);
        else if (n.type === 'url') uris.push(n.value);
      }
  const orNull = (l: string[]) => (l.length ? l : null);
  return fromJSON({
    Raw: b64(csr.rawData),
    Version: 0,
    Signature: b64(csr.signature),
    SignatureAlgorithm: signatureAlgorithm(
      csr.signatureAlgorithm as { name: string; hash?: { name: string } },
    ),
    PublicKeyAlgorithm: publicKeyAlgorithm,
    PublicKey: publicKey,
    Subject: pkixName(csr.subjectName),
    Extensions: csr.extensions.map((e) => ({
      Id: e.type.split('.').map(Number),
      Critical: e.critical,
      Value: b64(e.value),
    })),
    DNSNames: orNull(dns),
    EmailAddresses: orNull(emails),
    IPAddresses: orNull(ips),
    URIs: orNull(uris),
  });
});

/** Private keys from PEM blocks (or base64 of PEM), as OPA reads them: RSA, PKCS#8 and EC blocks. */
function privateKeys(text: string): KeyObject[] {
  let pem = text;
  if (/^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0)
    pem = Buffer.from(text, 'base64').toString('utf8');
  const types: Record<string, 'pkcs1' | 'pkcs8' | 'sec1'> = {
    'RSA PRIVATE KEY': 'pkcs1',
    'PRIVATE KEY': 'pkcs8',
    'EC PRIVATE KEY': 'sec1',
  };
  const keys: KeyObject[] = [];
  for (const block of pemBlocks(pem)) {
    const type = types[block.type];
    if (!type) continue;
    try {
      keys.push(createPrivateKey({ key: block.der, format: 'der', type }));
    } catch (error) {
      throw builtinError(`x509: failed to parse private key: ${(error as Error).message}`);
    }
  }
  return keys;
}

/** A private key as Go's json.Marshal writes it. */
function goPrivateKey(key: KeyObject): unknown {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty === 'RSA')
    return {
      N: b64urlToBig(jwk.n!),
      E: b64urlToBig(jwk.e!),
      D: b64urlToBig(jwk.d!),
      Primes: [b64urlToBig(jwk.p!), b64urlToBig(jwk.q!)],
      Precomputed: {
        Dp: b64urlToBig(jwk.dp!),
        Dq: b64urlToBig(jwk.dq!),
        Qinv: b64urlToBig(jwk.qi!),
        CRTValues: [],
      },
    };
  if (jwk.kty === 'EC')
    return { Curve: {}, X: b64urlToBig(jwk.x!), Y: b64urlToBig(jwk.y!), D: b64urlToBig(jwk.d!) };
  if (jwk.kty === 'OKP')
    return Buffer.concat([Buffer.from(jwk.d!, 'base64url'), Buffer.from(jwk.x!, 'base64url')]).toString(
      'base64',
    );
  return null;
}

def('crypto.parse_private_keys', 1, (args) => {
  const input = str(args, 0);
  if (input === '') return null;
  return fromJSON(privateKeys(input).map(goPrivateKey));
});

def('crypto.x509.parse_rsa_private_key', 1, (args) => {
  let input = str(args, 0);
  if (input === '') throw builtinError('input PEM data was empty');
  if (!input.startsWith('-----BEGIN')) input = decodeBase64(input).toString('utf8');
  const key = privateKeys(input)[0];
  if (!key) return null;
  return fromJSON(key.export({ format: 'jwk' }));
});

def('crypto.x509.parse_keypair', 2, (args) => {
  const pemOf = (text: string, type: string) => {
    if (text.startsWith('-----BEGIN ')) return text;
    const raw = decodeBase64(text);
    if (raw.toString('latin1').startsWith('-----BEGIN')) return raw.toString('utf8');
    return `-----BEGIN ${type}-----\n${raw.toString('base64')}\n-----END ${type}-----\n`;
  };
  const certs = parseCertificates(pemOf(str(args, 0), 'CERTIFICATE'));
  const key = privateKeys(pemOf(str(args, 1), 'PRIVATE KEY'))[0];
  if (certs.length === 0) throw builtinError('tls: failed to find any PEM data in certificate input');
  if (!key) throw builtinError('tls: failed to find any PEM data in key input');
  const leaf = new NodeCertificate(Buffer.from(certs[0]!.rawData));
  if (!leaf.checkPrivateKey(key)) throw builtinError('tls: private key does not match public key');
  return fromJSON({
    Certificate: certs.map((c) => b64(c.rawData)),
    PrivateKey: goPrivateKey(key),
    SupportedSignatureAlgorithms: null,
    OCSPStaple: null,
    SignedCertificateTimestamps: null,
    Leaf: certificateJson(certs[0]!),
  });
});
