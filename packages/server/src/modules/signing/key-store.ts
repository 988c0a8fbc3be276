import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { nowIso } from '../../ids.ts';
import { openKeyFile } from '../../private-file.ts';

/** The key-encryption key: 32 bytes from MICROAPP_KEK (base64) or a file; in dev, a file made on first start. */
export function loadKek(options: { env: NodeJS.ProcessEnv; devFile: string | null }): Buffer {
  const fromEnv = options.env.MICROAPP_KEK;
  const file = options.env.MICROAPP_KEK_FILE || options.devFile;
  let kek: Buffer;
  if (fromEnv) kek = Buffer.from(fromEnv, 'base64');
  else if (file && existsSync(file)) {
    // The key to every secret the platform holds is for the platform's user only.
    const open = openKeyFile(file);
    if (open)
      throw new Error(
        `${options.env.MICROAPP_KEK_FILE ? 'MICROAPP_KEK_FILE' : 'the KEK file'} ${file} ${open}: chmod 600 it (on Kubernetes, defaultMode: 0400 on the Secret's volume)`,
      );
    kek = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  } else if (options.devFile && file === options.devFile) {
    kek = randomBytes(32);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${kek.toString('base64')}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  } else throw new Error('no key-encryption key: set MICROAPP_KEK (32 bytes, base64) or MICROAPP_KEK_FILE');
  if (kek.length !== 32)
    throw new Error('the key-encryption key must be 32 bytes (base64 of 32 random bytes)');
  return kek;
}

function seal(kek: Buffer, plain: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(
    '.',
  );
}

function open(kek: Buffer, sealed: string): Buffer {
  const [v, iv, tag, body] = sealed.split('.');
  if (v !== 'v1' || !iv || !tag || !body) throw new Error('unknown sealed key format');
  const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(iv, 'base64'));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]);
}

export type SigningKey = { keyid: string; publicPem: string; privateKey: KeyObject };

/**
 * The platform's artifact signing key: ECDSA P-256 (cosign's default), made on first start,
 * stored encrypted under the key-encryption key, never returned by any API.
 */
export function createKeyStore(deps: { db: Kysely<Database>; kek: Buffer }) {
  const { db, kek } = deps;
  // Private keys decrypted once per key id; which key is current is read each time, so a rotation
  // on one replica is followed by every other at its next signature.
  const opened = new Map<string, SigningKey>();

  function newKeyRow() {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    return {
      keyid: createHash('sha256').update(spki).digest('hex'),
      public_pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      encrypted_private: seal(kek, privateKey.export({ type: 'pkcs8', format: 'der' })),
      status: 'current',
      created_at: nowIso(),
      retired_at: null,
    };
  }

  async function current(): Promise<SigningKey> {
    let row = await db
      .selectFrom('signing_keys')
      .selectAll()
      .where('status', '=', 'current')
      .executeTakeFirst();
    if (!row) {
      try {
        await db.insertInto('signing_keys').values(newKeyRow()).execute();
      } catch {
        // Another replica made the key first; use theirs.
      }
      row = await db
        .selectFrom('signing_keys')
        .selectAll()
        .where('status', '=', 'current')
        .executeTakeFirstOrThrow();
    }
    const known = opened.get(row.keyid);
    if (known) return known;
    const key = {
      keyid: row.keyid,
      publicPem: row.public_pem,
      privateKey: createPrivateKey({ key: open(kek, row.encrypted_private), format: 'der', type: 'pkcs8' }),
    };
    opened.set(row.keyid, key);
    return key;
  }

  /** The public key with this id, current or retired: what verifies an artifact signed with it. */
  async function publicKeyOf(keyid: string): Promise<string | null> {
    const row = await db
      .selectFrom('signing_keys')
      .select('public_pem')
      .where('keyid', '=', keyid)
      .executeTakeFirst();
    return row?.public_pem ?? null;
  }

  /**
   * Retires the current key and makes a new one, inside the caller's transaction (which audits it).
   * Artifacts signed before stay verifiable with the retired key, which /api/v1/keys keeps listing.
   */
  async function rotate(trx: Transaction<Database>): Promise<{ previous: string | null; current: string }> {
    const old = await trx
      .selectFrom('signing_keys')
      .select('keyid')
      .where('status', '=', 'current')
      .executeTakeFirst();
    if (old)
      await trx
        .updateTable('signing_keys')
        .set({ status: 'retired', retired_at: nowIso() })
        .where('keyid', '=', old.keyid)
        .execute();
    const fresh = newKeyRow();
    await trx.insertInto('signing_keys').values(fresh).execute();
    return { previous: old?.keyid ?? null, current: fresh.keyid };
  }

  /** Public keys only: the current one and retired ones, for verifying older artifacts. */
  async function publicKeys() {
    const rows = await db
      .selectFrom('signing_keys')
      .select(['keyid', 'public_pem', 'status', 'created_at', 'retired_at'])
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => ({
      keyid: r.keyid,
      algorithm: 'ECDSA_P256_SHA256',
      status: r.status,
      publicKey: r.public_pem,
      createdAt: r.created_at,
      retiredAt: r.retired_at,
    }));
  }

  /**
   * Whether this server's KEK opens the current signing key (true when there is none yet): a KEK that is
   * not the one the data was written with would otherwise pass every check until the first publish.
   */
  async function usable(): Promise<boolean> {
    const row = await db
      .selectFrom('signing_keys')
      .select(['keyid', 'encrypted_private'])
      .where('status', '=', 'current')
      .executeTakeFirst();
    if (!row || opened.has(row.keyid)) return true;
    try {
      open(kek, row.encrypted_private);
      return true;
    } catch {
      return false;
    }
  }

  return { current, publicKeys, publicKeyOf, rotate, usable };
}

export type KeyStore = ReturnType<typeof createKeyStore>;
