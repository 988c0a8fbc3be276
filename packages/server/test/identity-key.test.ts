import assert from 'node:assert/strict';
import { randomBytes, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { identitySigningKey } from '../src/modules/runtime/identity-key.ts';

describe('the gateway identity key', () => {
  test('is the same for the same KEK (every replica, every restart) and different for another', () => {
    const kek = randomBytes(32);
    assert.equal(identitySigningKey(kek).publicPem, identitySigningKey(Buffer.from(kek)).publicPem);
    assert.notEqual(identitySigningKey(kek).publicPem, identitySigningKey(randomBytes(32)).publicPem);
  });

  test('signs identities that the public key verifies, as the templates check them, and no other key does', async () => {
    const key = identitySigningKey(randomBytes(32));
    const other = identitySigningKey(randomBytes(32));
    const token = await new SignJWT({ email: 'dave@example.com' })
      .setProtectedHeader({ alg: 'ES256' })
      .setAudience('poll')
      .setExpirationTime('60s')
      .sign(key.privateKey);
    const [h, p, s] = token.split('.') as [string, string, string];
    const check = (pem: string) =>
      verify(
        'sha256',
        Buffer.from(`${h}.${p}`),
        { key: pem, dsaEncoding: 'ieee-p1363' },
        Buffer.from(s, 'base64url'),
      );
    assert.equal(check(key.publicPem), true);
    assert.equal(check(other.publicPem), false);
  });
});
