import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { describe, test } from 'node:test';
import { connect } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { compile, toValue } from '@microapp/rego';
import fc from 'fast-check';
import { adjustableClock } from '../src/clock.ts';
import { isPublicAddress, normalizeHost } from '../src/modules/egress/addresses.ts';
import { inspect, looksLikeCsv, maskText, readBody, requestText } from '../src/modules/egress/dlp.ts';
import {
  createEgressBroker,
  type DlpInput,
  type DlpVerdict,
  dlpVerdictOf,
} from '../src/modules/egress/egress-broker.ts';
import { serverName } from '../src/modules/egress/tls-hello.ts';
import { builtinPolicyDir, deepMerge, readPolicyDir } from '../src/modules/policy/policy-sources.ts';

/** The first bytes a real TLS client sends (its ClientHello), with `servername` as its SNI. */
async function realHello(servername?: string): Promise<Buffer> {
  const received = new Promise<Buffer>((resolve) => {
    const server = createServer((socket) =>
      socket.once('data', (d: Buffer) => {
        resolve(d);
        socket.destroy();
        server.close();
      }),
    );
    server.listen(0, '127.0.0.1', () => {
      const client = connect({
        port: (server.address() as AddressInfo).port,
        host: '127.0.0.1',
        ...(servername ? { servername } : {}),
        rejectUnauthorized: false,
      });
      client.on('error', () => {});
    });
  });
  return received;
}

/** An app as the broker sees it, approved for these hosts. */
const brokeredApp = (egress: string[]) => ({
  name: 'a',
  appId: 'app_x',
  version: '1.0.0',
  owner: 'o@example.com',
  department: null,
  tier: 'medium',
  manifest: {
    name: 'a',
    owner: 'o@example.com',
    purpose: 'a test app here',
    dataClasses: ['internal' as const],
    integrations: { egress },
  },
});

describe('egress rules', () => {
  test('addresses inside any network the platform sits on are never public', () => {
    for (const a of [
      '127.0.0.1',
      '127.8.9.10',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd12:3456::1',
      '::ffff:127.0.0.1',
      '::ffff:169.254.169.254',
      '64:ff9b::a00:1',
      'ff02::1',
      'not-an-address',
    ])
      assert.equal(isPublicAddress(a), false, a);
    for (const a of ['8.8.8.8', '172.32.0.1', '93.184.215.14', '2606:4700::1111', '::ffff:8.8.8.8'])
      assert.equal(isPublicAddress(a), true, a);
  });

  test('host names are compared in one form: case, trailing dots, ports, brackets, IDN', () => {
    assert.deepEqual(normalizeHost('API.Bank.Example.COM.'), { host: 'api.bank.example.com', port: null });
    assert.deepEqual(normalizeHost('api.bank.example.com:8443'), {
      host: 'api.bank.example.com',
      port: 8443,
    });
    assert.deepEqual(normalizeHost('[::1]:80'), { host: '::1', port: 80 });
    assert.deepEqual(normalizeHost('bücher.example'), { host: 'xn--bcher-kva.example', port: null });
    assert.equal(normalizeHost(''), null);
    assert.equal(normalizeHost('host:99999'), null);
  });

  test('DLP finds valid card numbers, IBANs, national identifiers and e-mail addresses, and only those', () => {
    const kinds = (s: string) => inspect(s).map((f) => f.kind);
    assert.deepEqual(kinds('card 4111-1111-1111-1111 and 5500 0000 0000 0004'), ['card_number']);
    assert.equal(inspect('4111111111111111 4111111111111111')[0]!.count, 2);
    assert.deepEqual(kinds('order 4111 1111 1111 1112, phone 0044 20 7946 0958'), []);
    assert.deepEqual(kinds('IBAN GB82 WEST 1234 5698 7654 32'), ['iban']);
    assert.deepEqual(kinds('IBAN GB82 WEST 1234 5698 7654 33'), []);
    assert.deepEqual(kinds('SSN 123-45-6789'), ['national_id']);
    assert.deepEqual(kinds('SSN 000-45-6789 or 666-12-3456'), []);
    assert.deepEqual(kinds('write to a.b@example.org'), ['email']);
    assert.deepEqual(inspect('4111111111111111')[0]!.samples, ['41…11'], 'samples are masked');
  });

  test('the server name of a TLS hello is read exactly, and a malformed one never reads past its bytes', async () => {
    const hello = await realHello('secure.bank.example.com');
    assert.equal(serverName(hello), 'secure.bank.example.com');
    assert.equal(serverName(await realHello()), null, 'no SNI (an address) is no name');
    // Every prefix of a real hello, and random bytes after a plausible header, parse to a name or null.
    for (let n = 0; n < hello.length; n++) {
      const name = serverName(hello.subarray(0, n));
      assert.ok(name === null || name === 'secure.bank.example.com');
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const r = serverName(Buffer.concat([Buffer.from([0x16, 3, 1, 2, 0, 1]), Buffer.from(bytes)]));
        return r === null || typeof r === 'string';
      }),
      { numRuns: 2000 },
    );
  });

  test("the company registry on a private address is a build's way out, never an app's", async () => {
    const broker = decidingBroker(async () => ['10.20.0.7'], {
      tunnels: true,
      buildRegistry: { host: 'npm.corp.example', port: 4873 },
    });
    const app = brokeredApp(['npm.corp.example']);
    assert.deepEqual(await broker.decideTunnel(app, 'npm.corp.example:4873', true), {
      allowed: true,
      host: 'npm.corp.example',
      address: '10.20.0.7',
      port: 4873,
    });
    for (const [authority, build, reason] of [
      ['npm.corp.example:4873', false, /port 443 only/],
      ['npm.corp.example:443', false, /resolves to an address apps may not reach \(10\.20\.0\.7\)/],
      ['npm.corp.example:443', true, /resolves to an address apps may not reach/],
    ] as const) {
      const d = await broker.decideTunnel(app, authority, build);
      assert.equal(d.allowed, false, `${authority} ${build}`);
      assert.match(!d.allowed ? d.reason : '', reason);
    }
  });

  test('tunnels are off unless the platform turns them on; then only approved names on 443, no connectors', async () => {
    const make = (tunnels: boolean) =>
      createEgressBroker({
        db: null as never,
        clock: adjustableClock(),
        audit: {
          record: async () => {
            throw new Error('decideTunnel() writes nothing');
          },
        },
        dir: '/nonexistent',
        policy: async (input) =>
          (input as { request: { host: string } }).request.host === 'closed.example.com'
            ? [{ message: 'closed by the org' }]
            : [],
        resolve: async () => ['93.184.215.14'],
        tunnels,
      });
    const app = brokeredApp(['api.example.com', 'closed.example.com']);
    const off = await make(false).decideTunnel(app, 'api.example.com:443');
    assert.equal(off.allowed, false);
    assert.match(!off.allowed ? off.reason : '', /does not allow tunnels/);
    const on = make(true);
    assert.deepEqual(await on.decideTunnel(app, 'API.Example.COM.:443'), {
      allowed: true,
      host: 'api.example.com',
      address: '93.184.215.14',
      port: 443,
    });
    for (const [authority, reason] of [
      ['api.example.com:22', /port 443 only/],
      ['other.example.com:443', /not in a's approved egress/],
      ['closed.example.com:443', /policy: closed by the org/],
      ['10.0.0.1:443', /never by address/],
      ['connector.ledger:443', /connectors take plain requests/],
      ['api.example.com', /HOST:PORT/],
    ] as const) {
      const d = await on.decideTunnel(app, authority);
      assert.equal(d.allowed, false, authority);
      assert.match(!d.allowed ? d.reason : '', reason);
    }
  });

  /** A broker that only decides (it writes nothing), resolving names as `resolve` says. */
  const decidingBroker = (
    resolve: (host: string) => Promise<string[]>,
    extra: Partial<Parameters<typeof createEgressBroker>[0]> = {},
  ) =>
    createEgressBroker({
      db: null as never,
      clock: adjustableClock(),
      audit: {
        record: async () => {
          throw new Error('decide() writes nothing');
        },
      },
      dir: '/nonexistent',
      policy: async () => [],
      resolve,
      ...extra,
    });

  test('a listed name that resolves inside the network is refused before any connection', async () => {
    const broker = decidingBroker(async (host) =>
      host === 'rebind.example.com' ? ['93.184.215.14', '10.0.0.5'] : ['169.254.169.254'],
    );
    const app = brokeredApp(['metadata.example.com', 'rebind.example.com']);
    const req = (host: string) => ({ headers: { host }, method: 'GET' }) as unknown as IncomingMessage;
    const meta = await broker.decide(app, req('metadata.example.com'), Buffer.alloc(0));
    assert.equal(meta.allowed, false);
    assert.match(
      !meta.allowed ? meta.reason : '',
      /resolves to an address apps may not reach \(169\.254\.169\.254\)/,
    );
    const rebind = await broker.decide(app, req('rebind.example.com'), Buffer.alloc(0));
    assert.equal(rebind.allowed, false, 'one inside address among public ones is enough to refuse');
  });

  test('DLP masks each kind to what a receipt shows, keeping the text around it and its separators', () => {
    const all = new Set(['card_number', 'iban', 'national_id', 'email'] as const);
    assert.equal(
      maskText(
        'card 4111-1111-1111-1111, iban gb82 west 1234 5698 7654 32, ssn 123-45-6789, ann.lee@example.org.',
        all,
      ),
      'card ****-****-****-1111, iban gb** **** **** **** **54 32, ssn ***-**-6789, ***@example.org.',
    );
    assert.equal(
      maskText('4111111111111111 and ann@example.org', new Set(['email'] as const)),
      '4111111111111111 and ***@example.org',
      'only the kinds asked for',
    );
    assert.equal(maskText('nothing to see here', all), 'nothing to see here');
  });

  test('DLP reads compressed bodies and forms, knows what it cannot mask, and refuses to guess an encoding', () => {
    const card = '4111 1111 1111 1111';
    const gz = readBody(gzipSync(`pay ${card}`), { 'content-encoding': 'gzip' }, 1 << 20);
    assert.deepEqual(
      inspect(gz.text ?? '').map((f) => f.kind),
      ['card_number'],
    );
    assert.equal(
      gz.mask!(new Set(['card_number']))!.toString(),
      'pay **** **** **** 1111',
      'sent uncompressed',
    );
    const form = readBody(
      Buffer.from(`note=${encodeURIComponent(`card ${card}`)}&to=ann.lee%40example.org`),
      { 'content-type': 'application/x-www-form-urlencoded' },
      1 << 20,
    );
    assert.deepEqual(
      inspect(form.text ?? '')
        .map((f) => f.kind)
        .sort(),
      ['card_number', 'email'],
    );
    assert.equal(
      form.mask!(new Set(['card_number', 'email']))!.toString(),
      'note=card+****+****+****+1111&to=***%40example.org',
    );
    const binary = readBody(Buffer.from([0xff, 0xfe, ...Buffer.from(` ${card} `)]), {}, 1 << 20);
    assert.deepEqual(
      inspect(binary.text ?? '').map((f) => f.kind),
      ['card_number'],
      'still read',
    );
    assert.equal(binary.mask, null, 'but not masked: the bytes are not text');
    assert.equal(readBody(Buffer.from('x'), { 'content-encoding': 'zstd' }, 1 << 20).text, null);
    assert.equal(readBody(Buffer.from('not gzip'), { 'content-encoding': 'gzip' }, 1 << 20).text, null);
    const bomb = gzipSync(Buffer.alloc(4 << 20));
    assert.equal(readBody(bomb, { 'content-encoding': 'gzip' }, 1 << 20).text, null, 'a decompression bomb');
  });

  test('DLP is not fooled by the easy ways around it (the attacks that passed it once)', () => {
    const card = '4111111111111111';
    const kinds = (s: string) => [...new Set(inspect(s).map((f) => f.kind))];
    const fullWidth = [...card].map((d) => String.fromCharCode(0xff10 + Number(d))).join('');
    const arabic = [...card].map((d) => String.fromCharCode(0x0660 + Number(d))).join('');
    const escaped = [...card].map((d) => `\\u00${d.charCodeAt(0).toString(16)}`).join('');
    for (const [how, text] of [
      ['JSON \\u escapes', `{"pan":"${escaped}"}`],
      ['full-width digits', `card ${fullWidth}`],
      ['Arabic-Indic digits', `card ${arabic}`],
      ['dots between the groups', 'card 4111.1111.1111.1111'],
      ['slashes between the groups', 'card 4111/1111/1111/1111'],
      ['zero-width spaces inside', `card ${[...card].join('\u200b')}`],
      ['split across JSON array items', '{"pan":[4111, 1111, 1111, 1111]}'],
      ['split across JSON string items', '{"pan":["4111","1111","1111","1111"]}'],
    ] as const)
      assert.deepEqual(kinds(text), ['card_number'], how);
    assert.deepEqual(kinds('ssn: 123456789'), ['national_id'], 'an SSN without dashes, where it says so');
    assert.deepEqual(kinds('SSN 123 45 6789'), ['national_id'], 'with spaces');
    assert.deepEqual(kinds('order 123456789 shipped'), [], 'nine digits alone are not an SSN');
    // UTF-16, and multipart parts in base64 or gzip, are read decoded.
    const utf16 = readBody(
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`card ${card}`, 'utf16le')]),
      {},
      1 << 20,
    );
    assert.deepEqual(kinds(utf16.text ?? ''), ['card_number'], 'UTF-16 with a byte-order mark');
    const utf16NoBom = readBody(
      Buffer.from(`card ${card}`, 'utf16le'),
      { 'content-type': 'text/plain' },
      1 << 20,
    );
    assert.deepEqual(kinds(utf16NoBom.text ?? ''), ['card_number'], 'UTF-16 without one');
    const multipart = (part: string, body: Buffer) =>
      Buffer.concat([
        Buffer.from(`--b\r\nContent-Disposition: form-data; name="f"\r\n${part}\r\n\r\n`),
        body,
        Buffer.from('\r\n--b--\r\n'),
      ]);
    const mp = { 'content-type': 'multipart/form-data; boundary=b' };
    const b64 = readBody(
      multipart(
        'Content-Transfer-Encoding: base64',
        Buffer.from(Buffer.from(`pan ${card}`).toString('base64')),
      ),
      mp,
      1 << 20,
    );
    assert.deepEqual(kinds(b64.text ?? ''), ['card_number'], 'a base64 part');
    assert.equal(b64.mask, null, 'which cannot be masked in place: a mask becomes a refusal');
    const gz = readBody(multipart('Content-Type: application/gzip', gzipSync(`pan ${card}`)), mp, 1 << 20);
    assert.deepEqual(kinds(gz.text ?? ''), ['card_number'], 'a gzip part');
    // A masked body that still hides a value, undisguised, is not sent masked: it is refused.
    const disguised = readBody(Buffer.from(`card ${fullWidth}`), { 'content-type': 'text/plain' }, 1 << 20);
    assert.equal(disguised.mask!(new Set(['card_number'])), null);
    // The path, the query string and the headers are read as well as the body.
    const meta = requestText(`/pay/${card}?note=${encodeURIComponent(`ssn 123-45-6789`)}`, {
      'x-customer-email': 'ann.lee@example.org',
      authorization: 'Bearer 4111111111111111',
    });
    assert.deepEqual(kinds(meta).sort(), ['card_number', 'email', 'national_id']);
    assert.ok(!meta.includes('Bearer'), 'credentials are not read as content');
  });

  test('the broker refuses personal data in a query string when the app is not approved for it', async () => {
    const broker = decidingBroker(async () => ['93.184.215.14']);
    const app = brokeredApp(['api.partner.example.com']);
    const req = (url: string, headers: Record<string, string> = {}) =>
      ({
        headers: { host: 'api.partner.example.com', ...headers },
        method: 'GET',
        url: `http://api.partner.example.com${url}`,
      }) as unknown as IncomingMessage;
    const query = await broker.decide(app, req('/lookup?card=4111111111111111'), Buffer.alloc(0));
    assert.equal(query.allowed, false, 'a card number in the query string');
    assert.match(!query.allowed ? query.reason : '', /card number/);
    const header = await broker.decide(app, req('/lookup', { 'x-ssn': '123-45-6789' }), Buffer.alloc(0));
    assert.equal(header.allowed, false, 'a national identifier in a header');
    const clean = await broker.decide(app, req('/lookup?q=weather'), Buffer.alloc(0));
    assert.equal(clean.allowed, true, !clean.allowed ? clean.reason : '');
  });

  test('a CSV file is known by its type, its name, a multipart part or its shape, and JSON is not one', () => {
    assert.equal(looksLikeCsv('text/csv; charset=utf-8', '/upload', 'a'), true);
    assert.equal(looksLikeCsv(undefined, '/exports/march.CSV?x=1', ''), true);
    assert.equal(
      looksLikeCsv(
        'multipart/form-data; boundary=b',
        '/upload',
        '--b\r\nContent-Disposition: form-data; name="f"; filename="people.csv"\r\n\r\nx\r\n--b--',
      ),
      true,
    );
    assert.equal(
      looksLikeCsv(undefined, '/upload', 'name,email,team\nann,a@x.org,ops\nbo,b@x.org,"sales, east"\n'),
      true,
    );
    assert.equal(looksLikeCsv(undefined, '/upload', 'name;team;city\nann;ops;Oslo\nbo;sales;Bergen'), true);
    assert.equal(
      looksLikeCsv('application/json', '/upload', '[{"a":1,"b":2,"c":3},\n{"a":1,"b":2,"c":3},\n{}]'),
      false,
    );
    assert.equal(looksLikeCsv(undefined, '/upload', 'Dear Ann, thanks, see you.\nBest, Bo\nPS: bye'), false);
    assert.equal(
      looksLikeCsv(undefined, '/upload', 'a,b\nc,d\ne,f'),
      false,
      'two columns are too few to tell',
    );
  });

  test('the DLP pack decides: block by default, mask or flag when the organization says so, CSV exports of personal data', async () => {
    const builtin = readPolicyDir(builtinPolicyDir);
    const policy = compile(builtin.modules);
    const pack = (config: Record<string, unknown> = {}) => {
      const data = toValue(deepMerge(builtin.data, { microapp: { config } }));
      return async (input: DlpInput): Promise<DlpVerdict> =>
        dlpVerdictOf(policy.evaluate('data.microapp.dlp', { input, data }), input);
    };
    const audited: string[] = [];
    const broker = (config?: Record<string, unknown>) =>
      createEgressBroker({
        db: null as never,
        clock: adjustableClock(),
        audit: { record: async () => audited.push('written') as never },
        dir: '/nonexistent',
        policy: async () => [],
        dlp: pack(config),
        resolve: async () => ['93.184.215.14'],
      });
    const app = brokeredApp(['files.example.com']);
    const post = (body: string, headers: Record<string, string> = {}) =>
      [
        {
          headers: { host: 'files.example.com', ...headers },
          method: 'POST',
          url: '/notes',
        } as unknown as IncomingMessage,
        Buffer.from(body),
      ] as const;
    const text = 'ask ann.lee@example.org about 4111 1111 1111 1111';

    const blocked = await broker().decide(app, ...post(text));
    assert.equal(blocked.allowed, false);
    assert.equal(!blocked.allowed && blocked.status, 451);
    assert.match(
      !blocked.allowed ? blocked.reason : '',
      /email \(1: an…rg\) and card number \(1: 41…11\), which a may not send to files\.example\.com \(it would need the pii and regulated data classes\)/,
    );

    const masked = await broker({ dlp: { modes: { email: 'mask', card_number: 'flag' } } }).decide(
      app,
      ...post(text),
    );
    assert.ok(masked.allowed);
    assert.equal(masked.body?.toString(), 'ask ***@example.org about 4111 1111 1111 1111');
    assert.deepEqual(
      masked.dlp?.masked.map((f) => f.kind),
      ['email'],
    );
    assert.deepEqual(
      masked.dlp?.flagged.map((f) => f.kind),
      ['card_number'],
    );

    const zipped = await broker({ dlp: { modes: { card_number: 'mask' } } }).decide(
      app,
      ...(post('', { 'content-encoding': 'gzip' }).slice(0, 1) as [IncomingMessage]),
      gzipSync('card 4111 1111 1111 1111'),
    );
    assert.ok(zipped.allowed);
    assert.equal(zipped.body?.toString(), 'card **** **** **** 1111', 'masked, and sent uncompressed');
    const hidden = await broker().decide(
      app,
      ...(post('', { 'content-encoding': 'gzip' }).slice(0, 1) as [IncomingMessage]),
      gzipSync('card 4111 1111 1111 1111'),
    );
    assert.equal(hidden.allowed, false, 'compressing a card number does not hide it');
    const unknown = await broker().decide(app, ...post('x', { 'content-encoding': 'zstd' }));
    assert.equal(!unknown.allowed && unknown.status, 415);
    const binary = await broker({ dlp: { modes: { card_number: 'mask' } } }).decide(
      app,
      ...(post('', {}).slice(0, 1) as [IncomingMessage]),
      Buffer.from([0xff, ...Buffer.from(' 4111111111111111')]),
    );
    assert.match(!binary.allowed ? binary.reason : '', /not text the broker can mask/);

    const csv = 'name,team,start\nann,ops,2024-01-02\nbo,sales,2025-03-04\n';
    const pii = { ...app, manifest: { ...app.manifest, dataClasses: ['internal' as const, 'pii' as const] } };
    const exported = await broker().decide(pii, ...post(csv, { 'content-type': 'text/csv' }));
    assert.equal(!exported.allowed && exported.status, 451);
    assert.match(
      !exported.allowed ? exported.reason : '',
      /a handles personal data and this is a CSV export to files\.example\.com, which is not approved for personal data/,
    );
    assert.ok(
      (await broker({ pii_hosts: ['files.example.com'] }).decide(pii, ...post(csv))).allowed,
      'a host approved for personal data may receive it',
    );
    assert.ok(
      (await broker().decide(app, ...post(csv))).allowed,
      'an app without personal data may send CSV',
    );
    assert.deepEqual(audited, [], 'deciding writes nothing: the broker audits when it sends');
  });
});
