import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, verify } from 'node:crypto';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { createIdentitySigner, identitySigningKey } from '../src/modules/runtime/identity-key.ts';

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

  test('the same caller of the same app gets the same token for 30 s of its 60, and new claims a new one at once', async () => {
    let clock = Date.parse('2026-12-04T10:00:00.000Z');
    const signer = createIdentitySigner(identitySigningKey(randomBytes(32)), () => clock);
    const dave = { email: 'dave@example.com', name: 'Dave', department: 'finance', roles: ['user'] };
    const first = await signer.token(dave, 'poll');
    const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString('utf8'));
    assert.equal(claims(first).exp - claims(first).iat, 60);
    clock += 29_000;
    assert.equal(await signer.token(dave, 'poll'), first, 'reused with 31 s left');
    assert.notEqual(await signer.token(dave, 'other-app'), first, 'another app: its own audience');
    assert.notEqual(await signer.token({ ...dave, roles: ['user', 'admin'] }, 'poll'), first, 'new roles');
    assert.notEqual(await signer.token({ ...dave, department: 'sales' }, 'poll'), first, 'new department');
    clock += 1_000;
    const renewed = await signer.token(dave, 'poll');
    assert.notEqual(renewed, first, 'never handed out with less than 30 s left');
    assert.ok(claims(renewed).exp * 1000 - clock >= 30_000);
  });

  test("the templates' identity check takes only tokens signed for their own app, by the platform, in date", async () => {
    const key = identitySigningKey(randomBytes(32));
    const signer = createIdentitySigner(key);
    const dave = { email: 'dave@example.com', name: 'Dave', department: 'finance', roles: ['user'] };
    const forged = await createIdentitySigner(identitySigningKey(randomBytes(32))).token(dave, 'poll');
    const tokens = [await signer.token(dave, 'poll'), await signer.token(dave, 'payroll'), forged];
    const library = resolve(import.meta.dirname, '../../../templates/_shared/lib/identity.js');
    const seen = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { identityOf } from ${JSON.stringify(library)};
process.stdout.write(JSON.stringify(${JSON.stringify(tokens)}.map((t) => identityOf({ headers: { 'x-microapp-identity': t } })?.email ?? null)));`,
      ],
      { env: { PATH: process.env.PATH, MICROAPP_IDENTITY_PUBLIC_KEY: key.publicPem, MICROAPP_APP: 'poll' } },
    ).toString();
    assert.deepEqual(
      JSON.parse(seen),
      ['dave@example.com', null, null],
      'its own app only; another key never',
    );
  });
});
