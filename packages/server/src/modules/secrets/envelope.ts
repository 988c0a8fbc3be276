import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A key-encryption key with a stable id (derived from the key, so it can be named without revealing it). */
export type Kek = { id: string; key: Buffer };

export function kekOf(key: Buffer): Kek {
  return {
    id: `kek-${createHash('sha256').update('microapp-kek-id').update(key).digest('hex').slice(0, 16)}`,
    key,
  };
}

function encrypt(key: Buffer, plain: Buffer, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(
    '.',
  );
}

function decrypt(key: Buffer, sealed: string, aad: string): Buffer {
  const [v, iv, tag, body] = sealed.split('.');
  if (v !== 'v1' || !iv || !tag || !body) throw new Error('unknown ciphertext format');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]);
}

/**
 * Envelope encryption: each value gets its own random data key (AES-256-GCM); the data key is
 * wrapped by the key-encryption key. `aad` binds the ciphertext to its app and name, so a row
 * copied onto another secret does not decrypt.
 */
export function seal(
  kek: Kek,
  value: string,
  aad: string,
): { kekId: string; wrappedKey: string; ciphertext: string } {
  const dataKey = randomBytes(32);
  try {
    return {
      kekId: kek.id,
      wrappedKey: encrypt(kek.key, dataKey, `dek:${aad}`),
      ciphertext: encrypt(dataKey, Buffer.from(value, 'utf8'), aad),
    };
  } finally {
    dataKey.fill(0);
  }
}

export function unseal(
  keks: Kek[],
  sealed: { kekId: string; wrappedKey: string; ciphertext: string },
  aad: string,
): string {
  const kek = keks.find((k) => k.id === sealed.kekId);
  if (!kek)
    throw new Error(`the key-encryption key ${sealed.kekId} is not configured (MICROAPP_KEK_PREVIOUS?)`);
  const dataKey = decrypt(kek.key, sealed.wrappedKey, `dek:${aad}`);
  try {
    return decrypt(dataKey, sealed.ciphertext, aad).toString('utf8');
  } finally {
    dataKey.fill(0);
  }
}

/** Re-wraps a data key under another KEK; the value itself is not decrypted. */
export function rewrap(
  keks: Kek[],
  target: Kek,
  sealed: { kekId: string; wrappedKey: string },
  aad: string,
): string {
  const kek = keks.find((k) => k.id === sealed.kekId);
  if (!kek) throw new Error(`the key-encryption key ${sealed.kekId} is not configured`);
  const dataKey = decrypt(kek.key, sealed.wrappedKey, `dek:${aad}`);
  try {
    return encrypt(target.key, dataKey, `dek:${aad}`);
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Envelope encryption of bytes (an app's archived data): the same scheme as `seal`, with the
 * ciphertext as raw bytes (12-byte IV, 16-byte tag, body) for a file, not text for a row.
 */
export function sealBytes(
  kek: Kek,
  plain: Buffer,
  aad: string,
): { kekId: string; wrappedKey: string; body: Buffer } {
  const dataKey = randomBytes(32);
  try {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      kekId: kek.id,
      wrappedKey: encrypt(kek.key, dataKey, `dek:${aad}`),
      body: Buffer.concat([iv, cipher.getAuthTag(), body]),
    };
  } finally {
    dataKey.fill(0);
  }
}

export function unsealBytes(
  keks: Kek[],
  sealed: { kekId: string; wrappedKey: string; body: Buffer },
  aad: string,
): Buffer {
  const kek = keks.find((k) => k.id === sealed.kekId);
  if (!kek)
    throw new Error(`the key-encryption key ${sealed.kekId} is not configured (MICROAPP_KEK_PREVIOUS?)`);
  const dataKey = decrypt(kek.key, sealed.wrappedKey, `dek:${aad}`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, sealed.body.subarray(0, 12));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(sealed.body.subarray(12, 28));
    return Buffer.concat([decipher.update(sealed.body.subarray(28)), decipher.final()]);
  } finally {
    dataKey.fill(0);
  }
}
