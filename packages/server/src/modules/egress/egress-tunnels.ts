import { STATUS_CODES } from 'node:http';
import { type Socket, connect as tcpConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { normalizeHost } from './addresses.ts';
import type { EgressRecords } from './egress-records.ts';
import type { EgressRules } from './egress-rules.ts';
import type { BrokeredApp, Refusal } from './egress-types.ts';
import { clientHello, serverName } from './tls-hello.ts';

/**
 * CONNECT tunnels and byte relays: a tunnel is granted by the same name, approval, policy and address rules
 * as a request, then must start with a TLS hello naming the host it was granted for; a relay joins an app's
 * connection to the outside and records it once, with its bytes.
 */
export function createTunnels(
  deps: {
    tunnels?: boolean;
    onBytes?: (app: string, host: string, bytesOut: number, bytesIn: number) => void;
  },
  rules: EgressRules,
  records: EgressRecords,
) {
  const { record } = records;

  /**
   * A CONNECT tunnel (what HTTPS_PROXY clients send): the same name, policy and address rules as a request,
   * to port 443 only, never to a connector (it needs the broker to add its credential), and only when the
   * platform allows tunnels at all: the broker cannot read inside one, so DLP does not apply to it.
   */
  async function decideTunnel(
    app: BrokeredApp,
    authority: string,
    build = false,
  ): Promise<Refusal | { allowed: true; host: string; address: string; port: number }> {
    // A build's socket takes tunnels whatever the platform's setting: npm reaches its registry through one.
    const tunnels = build || (deps.tunnels ?? false);
    const target = normalizeHost(authority);
    if (!target || target.port === null)
      return { allowed: false, status: 400, host: null, reason: 'CONNECT names HOST:PORT' };
    const asked = target.host;
    if (!tunnels)
      return {
        allowed: false,
        status: 403,
        host: asked,
        reason:
          'this platform does not allow tunnels (CONNECT), which the broker cannot inspect: send the request through the broker instead (fetch, http and https do that in the sandbox)',
      };
    const byAddress = rules.addressRefusal(asked);
    if (byAddress) return byAddress;
    if (asked.startsWith('connector.'))
      return {
        allowed: false,
        status: 403,
        host: asked,
        reason: `connectors take plain requests (http://${asked}/…), so the broker can add their credential`,
      };
    const registry = build && rules.isRegistry(asked, target.port);
    if (target.port !== 443 && !registry)
      return {
        allowed: false,
        status: 403,
        host: asked,
        reason: `tunnels go to port 443 only, not ${target.port}`,
      };
    const unlisted = rules.unapproved(app, asked);
    if (unlisted) return unlisted;
    const denied = await rules.policyRefusal(app, asked, 'https', 'CONNECT');
    if (denied) return denied;
    const reached = await rules.addressOf(asked, asked, registry);
    if ('allowed' in reached) return reached;
    return { allowed: true, host: asked, address: reached.address, port: reached.port ?? target.port };
  }

  /** Records a refused tunnel as the app's (audited, folded when it repeats) and tells the app why. */
  async function refuseTunnel(
    app: BrokeredApp,
    inside: Duplex,
    d: { host: string | null; status: number; reason: string },
  ) {
    await record(app, {
      host: d.host,
      method: 'CONNECT',
      decision: 'denied',
      status: d.status,
      bytesOut: 0,
      bytesIn: 0,
      reason: d.reason,
    });
    const body = JSON.stringify({ error: 'egress_denied', detail: d.reason });
    inside.end(
      `HTTP/1.1 ${d.status} ${STATUS_CODES[d.status] ?? 'Refused'}\r\ncontent-type: application/json\r\nx-microapp-egress: denied\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  /**
   * Serves one CONNECT: the decision, then `200`, then the client's TLS hello, whose server name (SNI) must
   * be the host the tunnel was granted for; then bytes both ways, counted and recorded when it closes.
   */
  async function tunnelFor(
    app: BrokeredApp,
    authority: string,
    inside: Duplex,
    head: Buffer,
    build: boolean,
  ) {
    const d = await decideTunnel(app, authority, build);
    if (!d.allowed) return refuseTunnel(app, inside, d);
    inside.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const hello = await clientHello(inside, head);
    const named = hello ? serverName(hello) : null;
    const sni = named ? normalizeHost(named)?.host : null;
    if (!hello || sni !== d.host) {
      const reason = hello
        ? `the TLS server name (${named ?? 'none'}) is not the host the tunnel was granted for (${d.host})`
        : 'the tunnel did not start with a TLS hello';
      await record(app, {
        host: d.host,
        method: 'CONNECT',
        decision: 'denied',
        status: 403,
        bytesOut: 0,
        bytesIn: 0,
        reason,
      });
      inside.destroy();
      return;
    }
    const outside = tcpConnect(d.port, d.address);
    outside.write(hello);
    relay(app, inside, outside, d.host, 'CONNECT', hello.length);
    inside.resume();
  }

  /**
   * Joins an app's connection to the outside, counting bytes both ways, and records it once when either
   * side ends: `allowed` when it connected (a reset at the end included), `failed` when it never did.
   */
  function relay(app: BrokeredApp, inside: Duplex, outside: Socket, label: string, method: string, sent = 0) {
    let bytesOut = sent;
    let bytesIn = 0;
    inside.on('data', (c: Buffer) => {
      bytesOut += c.length;
    });
    outside.on('data', (c: Buffer) => {
      bytesIn += c.length;
    });
    inside.pipe(outside).pipe(inside);
    let connected = false;
    outside.once('connect', () => {
      connected = true;
    });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inside.destroy();
      outside.destroy();
      deps.onBytes?.(app.name, label, bytesOut, bytesIn);
      void record(app, {
        host: label,
        method,
        decision: connected ? 'allowed' : 'failed',
        status: connected ? 200 : 0,
        bytesOut,
        bytesIn,
      }).catch(() => {});
    };
    for (const side of [inside, outside]) {
      side.on('error', finish);
      side.on('close', finish);
    }
  }

  return { decideTunnel, tunnelFor, refuseTunnel, relay };
}
