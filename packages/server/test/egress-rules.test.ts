import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { describe, test } from 'node:test';
import { connect } from 'node:tls';
import fc from 'fast-check';
import { adjustableClock } from '../src/clock.ts';
import { isPublicAddress, normalizeHost } from '../src/modules/egress/addresses.ts';
import { inspect } from '../src/modules/egress/dlp.ts';
import { createEgressBroker } from '../src/modules/egress/egress-broker.ts';
import { serverName } from '../src/modules/egress/tls-hello.ts';

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

  test('a listed name that resolves inside the network is refused before any connection', async () => {
    const broker = createEgressBroker({
      db: null as never,
      clock: adjustableClock(),
      audit: {
        record: async () => {
          throw new Error('decide() writes nothing');
        },
      },
      dir: '/nonexistent',
      policy: async () => [],
      resolve: async (host) =>
        host === 'rebind.example.com' ? ['93.184.215.14', '10.0.0.5'] : ['169.254.169.254'],
    });
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
});
