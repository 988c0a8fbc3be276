import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redactor } from '../src/modules/runtime/redact.ts';

// The encodings a hostile app uses to walk its secret past a redactor that looks for the plain value.
describe('redacting secrets from what an app prints', () => {
  const secret = 's3cr3t-Canary-9f2b71';
  const redact = redactor({ API_TOKEN: secret });
  const bytes = Buffer.from(secret);

  const attempts: Record<string, string> = {
    plain: `token ${secret}`,
    'upper case': `TOKEN ${secret.toUpperCase()}`,
    'lower case': `token ${secret.toLowerCase()}`,
    'url-encoded': `token=${encodeURIComponent(secret)}`,
    base64: `auth ${bytes.toString('base64')}`,
    'base64 at offset 1': `auth ${Buffer.concat([Buffer.from('x'), bytes]).toString('base64')}`,
    'base64 at offset 2': `auth ${Buffer.concat([Buffer.from('xy'), bytes]).toString('base64')}`,
    'base64 glued to other text': `Basic${Buffer.concat([Buffer.from('user:'), bytes]).toString('base64')}`,
    base64url: `jwt.${Buffer.concat([Buffer.from('{"k":"'), bytes]).toString('base64url')}`,
    hex: `key=${bytes.toString('hex')}`,
    'hex upper case, odd offset': `key=F${bytes.toString('hex').toUpperCase()}`,
    'json \\u escapes': JSON.stringify({
      t: [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
    }),
    'json \\u escapes, some of them, upper case hex': `"${secret.slice(0, 5)}${[...secret.slice(5)].map((c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`).join('')}"`,
  };
  for (const [how, line] of Object.entries(attempts))
    test(`${how}: nothing of the secret is left`, () => {
      const out = redact(line);
      assert.match(out, /redacted/, `${how}: ${out}`);
      const lower = out.toLowerCase();
      assert.ok(!lower.includes(secret.toLowerCase()), out);
      assert.ok(!lower.includes(bytes.toString('hex')), out);
      assert.ok(!out.includes(bytes.toString('base64').slice(0, 20)), out);
    });

  test('ordinary lines are left alone, and known forms are replaced in place', () => {
    assert.equal(redact('listening on /run/app/app.sock'), 'listening on /run/app/app.sock');
    assert.equal(redact(`a ${secret} b`), 'a [redacted:API_TOKEN] b');
    assert.equal(redact(`a\n${secret}`), 'a\n[redacted:API_TOKEN]');
    assert.equal(redactor({ SHORT: 'abc' })('abc'), 'abc', 'values under six characters are not looked for');
  });

  test("a connection URL's password is redacted on its own", () => {
    const r = redactor({ 'connector.ledger': 'postgres://app_1:Pa55-word-xyz@db.internal/ledger' });
    assert.equal(r('password Pa55-word-xyz'), 'password [redacted:connector.ledger]');
  });
});

test('escapes that are not characters do not break redaction', () => {
  assert.equal(redactor({ A: 'abcdefgh' })('\\u{FFFFFF} \\u{110000}'), '\\u{FFFFFF} \\u{110000}');
});
