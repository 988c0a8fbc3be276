import { lookup } from 'node:dns/promises';
import { chmodSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  createServer as createTcpServer,
  isIP,
  type Socket,
  type Server as TcpServer,
  connect as tcpConnect,
} from 'node:net';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import { newId } from '../../ids.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { ResolvedConnector } from '../connectors/connector-service.ts';
import { isPublicAddress, normalizeHost } from './addresses.ts';
import type { DlpFinding } from './dlp.ts';
import { createDlpCheck, type DlpInput, type DlpVerdict } from './egress-dlp.ts';
import { clientHello, serverName } from './tls-hello.ts';

export { type DlpInput, type DlpVerdict, dlpVerdictOf } from './egress-dlp.ts';

export const shimFile = join(import.meta.dirname, 'shim.cjs');
export const buildProxyFile = join(import.meta.dirname, 'build-proxy.cjs');

/** The app a broker socket belongs to: the socket itself says who is calling, no header can. */
export type BrokeredApp = {
  name: string;
  appId: string;
  version: string;
  manifest: Manifest;
  department: string | null;
  tier: string;
  owner: string;
};

export type EgressDecision =
  | {
      allowed: true;
      host: string;
      port: number;
      address: string;
      scheme: 'http' | 'https';
      /** What the app asked for: a host, or `connector.ID`. */
      target: string;
      /** The path and query upstream (a connector's base path comes first). */
      path: string;
      /** A connector's credential header, added by the broker only. */
      inject?: [string, string];
      /** The body to send instead of the app's: its personal data masked, uncompressed. */
      body?: Buffer;
      /** What DLP masked or let through flagged (audited, and told to the app in a response header). */
      dlp?: { masked: DlpFinding[]; flagged: DlpFinding[] };
    }
  | { allowed: false; status: number; reason: string; host: string | null; findings?: DlpFinding[] };

const maxBody = 5 * 1024 * 1024;
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
]);

/**
 * The egress broker: the only way out of an app's sandbox. Each app instance gets its own unix socket
 * (so the socket identifies the app), bound into the sandbox at /run/egress/proxy.sock, with a preload that
 * sends fetch() there. Per request: the host must be in the app's approved `integrations.egress`; the
 * policy packs' `deny` rules are asked (`input.request.method == "egress"`); the name is resolved by the
 * broker and refused when any address is not public (loopback, private, link-local, metadata…); the body is
 * inspected for card numbers, IBANs, national identifiers and e-mail addresses, which may leave only apps
 * approved for that data. Then the broker connects to the address it checked (TLS verified against the
 * name) and streams the answer back. Every attempt is recorded; refusals are audited and explained to the app.
 */
export function createEgressBroker(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  dir: string;
  policy: (input: unknown, app: string) => Promise<{ message: string }[]>;
  /** Name resolution; tests and `--dev` may pin names (MICROAPP_DEV_EGRESS_HOSTS), which skips the address rule. */
  resolve?: (host: string) => Promise<string[]>;
  pinned?: Map<string, { address: string; port: number }>;
  onBytes?: (app: string, host: string, bytesOut: number, bytesIn: number) => void;
  /** Whether apps may open CONNECT tunnels (opaque to DLP); off unless the platform turns them on. */
  tunnels?: boolean;
  /**
   * What to do with personal and payment data in a body (the `microapp.dlp` pack: kinds to block, mask
   * or flag). Without it, whatever the destination may not receive is blocked.
   */
  dlp?: (input: DlpInput, app: string) => Promise<DlpVerdict>;
  /** Connectors (`http://connector.{id}/…`), with their credentials: the broker adds them, apps never see them. */
  connectors?: { resolve(id: string): Promise<ResolvedConnector | null> };
  timeoutMs?: number;
}) {
  const resolve =
    deps.resolve ?? (async (host: string) => (await lookup(host, { all: true })).map((a) => a.address));
  const servers = new Map<string, Server>();
  const tunnels = new Map<string, { server: TcpServer; open: Set<Socket> }[]>();

  async function record(
    app: BrokeredApp,
    row: {
      host: string | null;
      method: string;
      decision: string;
      status: number;
      bytesOut: number;
      bytesIn: number;
      reason?: string;
      findings?: DlpFinding[];
    },
  ) {
    const at = deps.clock.nowIso();
    await deps.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('app_egress')
        .values({
          id: newId('egress'),
          app_id: app.appId,
          host: row.host ?? '(none)',
          method: row.method,
          decision: row.decision,
          status: row.status,
          bytes_out: row.bytesOut,
          bytes_in: row.bytesIn,
          at,
        })
        .execute();
      if (row.decision !== 'allowed')
        await deps.audit.record(
          trx,
          { actor: `app:${app.name}` },
          {
            action: row.decision === 'blocked_dlp' ? 'egress.blocked' : 'egress.denied',
            targetType: 'app',
            target: app.name,
            reason: row.reason ?? null,
            summary: {
              host: row.host,
              method: row.method,
              version: app.version,
              ...(row.findings ? { found: row.findings.map((f) => `${f.kind} x${f.count}`) } : {}),
            },
          },
        );
    });
  }

  /** What DLP masked or flagged on a request it let through: audited with kinds and counts, never the values. */
  async function recordDlp(
    app: BrokeredApp,
    method: string,
    host: string,
    dlp: { masked: DlpFinding[]; flagged: DlpFinding[] },
  ) {
    await deps.db.transaction().execute(async (trx) => {
      for (const [action, fs] of [
        ['egress.masked', dlp.masked],
        ['egress.flagged', dlp.flagged],
      ] as const)
        if (fs.length)
          await deps.audit.record(
            trx,
            { actor: `app:${app.name}` },
            {
              action,
              targetType: 'app',
              target: app.name,
              reason: `the organization's DLP policy ${action === 'egress.masked' ? 'masked' : 'flagged'} ${fs.map((f) => kindName(f.kind)).join(' and ')} on the way to ${host}`,
              summary: {
                host,
                method,
                version: app.version,
                found: fs.map((f) => `${f.kind} x${f.count}`),
              },
            },
          );
    });
  }

  /** Everything but the connection: which host, whether it may be reached, and at which address. */
  async function decide(app: BrokeredApp, req: IncomingMessage, body: Buffer): Promise<EgressDecision> {
    const target = normalizeHost(String(req.headers.host ?? ''));
    if (!target) return { allowed: false, status: 400, reason: 'the request names no host', host: null };
    const asked = target.host;
    let scheme: 'http' | 'https' = req.headers['x-microapp-egress-scheme'] === 'https' ? 'https' : 'http';
    let host = asked;
    let port = target.port;
    let path = req.url ?? '/';
    let inject: [string, string] | undefined;
    // Data may leave only to where both the app and (for a connector) the system are approved for it.
    let mayReceive = new Set<string>(app.manifest.dataClasses);
    let connector: { id: string; dataClasses: string[] } | null = null;
    const byAddress = addressRefusal(asked);
    if (byAddress) return byAddress;
    const connectorId = /^connector\.([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$/.exec(asked)?.[1];
    if (connectorId) {
      if (!(app.manifest.integrations?.connectors ?? []).includes(connectorId))
        return {
          allowed: false,
          status: 403,
          host: asked,
          reason: `${app.name} does not use the connector ${connectorId}: add it to integrations.connectors in microapp.yaml and register again; the change is reviewed`,
        };
      const c = await deps.connectors?.resolve(connectorId);
      if (!c)
        return {
          allowed: false,
          status: 404,
          host: asked,
          reason: `no connector ${connectorId} is defined; ask a platform admin`,
        };
      const method = (req.method ?? 'GET').toUpperCase();
      if (!c.methods.includes(method))
        return {
          allowed: false,
          status: 405,
          host: asked,
          reason: `the connector ${connectorId} allows ${c.methods.join(', ')}, not ${method}`,
        };
      const raw = path.split('?')[0] ?? '/';
      if (/(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\\/i.test(raw))
        return {
          allowed: false,
          status: 400,
          host: asked,
          reason: 'connector paths may not hold dot segments or encoded slashes',
        };
      const { pathname, search } = new URL(path, 'http://connector');
      const within = c.paths.some(
        (p) => pathname === p || pathname.startsWith(p.endsWith('/') ? p : `${p}/`),
      );
      if (!within)
        return {
          allowed: false,
          status: 403,
          host: asked,
          reason: `the connector ${connectorId} allows ${c.paths.join(', ')}, not ${pathname}`,
        };
      const base = new URL(c.baseUrl);
      scheme = base.protocol === 'https:' ? 'https' : 'http';
      host = base.hostname;
      port = base.port ? Number(base.port) : null;
      path = `${base.pathname.replace(/\/$/, '')}${pathname}${search}`;
      mayReceive = new Set([...mayReceive].filter((d) => c.dataClasses.includes(d)));
      connector = { id: connectorId, dataClasses: c.dataClasses };
      if (c.credential)
        inject = [c.authHeader, c.authHeader === 'authorization' ? `Bearer ${c.credential}` : c.credential];
    } else {
      const unlisted = unapproved(app, asked);
      if (unlisted) return unlisted;
    }
    const denied = await policyRefusal(app, asked, scheme, req.method ?? 'GET', connectorId);
    if (denied) return denied;
    // Every request is read, not only those with a body: a query string or a header carries data too.
    const verdict = await dlpCheck(app, req, body, { asked, scheme, path, mayReceive, connector });
    if ('allowed' in verdict) return verdict;
    const dlp = verdict;
    const finalPort = port ?? (scheme === 'https' ? 443 : 80);
    const base = {
      host,
      port: finalPort,
      scheme,
      target: asked,
      path,
      ...(inject ? { inject } : {}),
      ...dlp,
    };
    const reached = await addressOf(host, asked);
    if ('allowed' in reached) return reached;
    return { allowed: true, ...base, ...reached, port: reached.port ?? finalPort };
  }

  type Refusal = Extract<EgressDecision, { allowed: false }>;

  const kindName = (kind: string) => kind.replace('_', ' ');
  const dlpCheck = createDlpCheck({ dlp: deps.dlp, maxBody });

  function addressRefusal(asked: string): Refusal | null {
    return isIP(asked)
      ? {
          allowed: false,
          status: 403,
          host: asked,
          reason: `apps reach services by name, never by address (${asked})`,
        }
      : null;
  }

  function unapproved(app: BrokeredApp, asked: string): Refusal | null {
    const approved = app.manifest.integrations?.egress ?? [];
    return approved.includes(asked)
      ? null
      : {
          allowed: false,
          status: 403,
          host: asked,
          reason: `${asked} is not in ${app.name}'s approved egress (${approved.join(', ') || 'none'}): add it to integrations.egress in microapp.yaml and register again; the change is reviewed`,
        };
  }

  /** The organization's policy packs, asked for this one request or tunnel (`input.request.method == "egress"`). */
  async function policyRefusal(
    app: BrokeredApp,
    asked: string,
    scheme: 'http' | 'https',
    verb: string,
    connectorId?: string,
  ): Promise<Refusal | null> {
    const denials = await deps.policy(
      {
        request: {
          method: 'egress',
          host: asked,
          scheme,
          verb,
          ...(connectorId ? { connector: connectorId } : {}),
        },
        manifest: app.manifest,
        app: { name: app.name, owner: app.owner, department: app.department, tier: app.tier },
      },
      app.name,
    );
    return denials.length
      ? {
          allowed: false,
          status: 403,
          host: asked,
          reason: `policy: ${denials.map((d) => d.message).join('; ')}`,
        }
      : null;
  }

  /**
   * The address to connect to: a pinned stand-in (`--dev`), or what the name resolves to when every
   * address is public (one inside address among public ones is enough to refuse: DNS rebinding).
   */
  async function addressOf(
    host: string,
    asked: string,
  ): Promise<Refusal | { address: string; port?: number }> {
    const pinned = deps.pinned?.get(host);
    if (pinned) return { address: pinned.address, port: pinned.port };
    let addresses: string[];
    try {
      addresses = await resolve(host);
    } catch {
      return { allowed: false, status: 502, host: asked, reason: `${host} could not be resolved` };
    }
    const inside = addresses.filter((a) => !isPublicAddress(a));
    if (addresses.length === 0 || inside.length)
      return {
        allowed: false,
        status: 403,
        host: asked,
        reason: `${host} resolves to an address apps may not reach (${inside.join(', ') || 'none'})`,
      };
    return { address: addresses[0]! };
  }

  /**
   * A CONNECT tunnel (what HTTPS_PROXY clients send): the same name, policy and address rules as a request,
   * to port 443 only, never to a connector (it needs the broker to add its credential), and only when the
   * platform allows tunnels at all: the broker cannot read inside one, so DLP does not apply to it.
   */
  async function decideTunnel(
    app: BrokeredApp,
    authority: string,
    tunnels = deps.tunnels ?? false,
  ): Promise<Refusal | { allowed: true; host: string; address: string; port: number }> {
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
    const byAddress = addressRefusal(asked);
    if (byAddress) return byAddress;
    if (asked.startsWith('connector.'))
      return {
        allowed: false,
        status: 403,
        host: asked,
        reason: `connectors take plain requests (http://${asked}/…), so the broker can add their credential`,
      };
    if (target.port !== 443)
      return {
        allowed: false,
        status: 403,
        host: asked,
        reason: `tunnels go to port 443 only, not ${target.port}`,
      };
    const unlisted = unapproved(app, asked);
    if (unlisted) return unlisted;
    const denied = await policyRefusal(app, asked, 'https', 'CONNECT');
    if (denied) return denied;
    const reached = await addressOf(asked, asked);
    if ('allowed' in reached) return reached;
    return { allowed: true, host: asked, address: reached.address, port: reached.port ?? 443 };
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
    tunnels?: boolean,
  ) {
    const d = await decideTunnel(app, authority, tunnels);
    if (!d.allowed) {
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
      return;
    }
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

  async function handle(app: BrokeredApp, req: IncomingMessage, res: ServerResponse) {
    const method = req.method ?? 'GET';
    // A client configured with this as its HTTP proxy (npm, in a build) sends the whole URL: the host in
    // it is the one asked for, whatever the Host header says.
    if (/^http:\/\//i.test(req.url ?? '')) {
      try {
        const url = new URL(req.url!);
        req.headers.host = url.host;
        req.url = `${url.pathname}${url.search}`;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'egress_denied', detail: 'the request URL does not parse' }));
        return;
      }
    }
    const refuse = async (
      status: number,
      reason: string,
      host: string | null,
      decision = 'denied',
      findings?: DlpFinding[],
    ) => {
      await record(app, {
        host,
        method,
        decision,
        status,
        bytesOut: 0,
        bytesIn: 0,
        reason,
        ...(findings ? { findings } : {}),
      });
      const body = JSON.stringify({
        error: decision === 'blocked_dlp' ? 'egress_blocked' : 'egress_denied',
        detail: reason,
      });
      res.writeHead(status, {
        'content-type': 'application/json',
        'x-microapp-egress': decision,
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    };
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBody)
        return refuse(
          413,
          `request bodies through the broker are limited to ${maxBody / 1024 / 1024} MB`,
          null,
        );
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    const d = await decide(app, req, body);
    if (!d.allowed)
      return refuse(d.status, d.reason, d.host, d.findings ? 'blocked_dlp' : 'denied', d.findings);

    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined && !hopByHop.has(k) && !k.startsWith('x-microapp-')) headers[k] = v;
    // A connector's credential is the broker's to add; whatever the app put in that header is dropped.
    if (d.inject) {
      delete headers.authorization;
      headers[d.inject[0]] = d.inject[1];
    }
    headers.host = d.port === (d.scheme === 'https' ? 443 : 80) ? d.host : `${d.host}:${d.port}`;
    // A masked body goes uncompressed: the broker masked what it read, not the compressed bytes.
    const sent = d.body ?? body;
    if (d.body) delete headers['content-encoding'];
    headers['content-length'] = String(sent.length);
    const told: Record<string, string> = {};
    if (d.dlp) {
      await recordDlp(app, method, d.target, d.dlp);
      // A header holds ASCII only: kinds and counts, no samples.
      const counted = (fs: DlpFinding[]) => fs.map((f) => `${kindName(f.kind)} x${f.count}`).join(', ');
      const said = [
        ...(d.dlp.masked.length ? [`masked ${counted(d.dlp.masked)}`] : []),
        ...(d.dlp.flagged.length ? [`flagged ${counted(d.dlp.flagged)} for review`] : []),
      ];
      told['x-microapp-egress'] = d.dlp.masked.length ? 'masked' : 'flagged';
      told['x-microapp-egress-detail'] = `the organization's DLP policy ${said.join('; ')}`;
    }
    const send = d.scheme === 'https' ? httpsRequest : httpRequest;
    let bytesIn = 0;
    const upstream = send(
      {
        host: d.address,
        port: d.port,
        method,
        path: d.path,
        headers,
        timeout: deps.timeoutMs ?? 30_000,
        // TLS checks the certificate against the name the app asked for, not the address.
        ...(d.scheme === 'https' ? { servername: d.host } : {}),
      },
      (up) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers))
          if (v !== undefined && !hopByHop.has(k) && !k.startsWith('x-microapp-')) out[k] = v;
        try {
          res.writeHead(up.statusCode ?? 502, { ...out, ...told });
        } catch (e) {
          // A header Node will not send: the app gets a closed connection now, not a hang until its timeout.
          up.destroy();
          res.destroy(e as Error);
          return;
        }
        up.on('data', (c: Buffer) => {
          bytesIn += c.length;
        });
        up.pipe(res);
        up.on('end', () => {
          deps.onBytes?.(app.name, d.target, sent.length, bytesIn);
          void record(app, {
            host: d.target,
            method,
            decision: 'allowed',
            status: up.statusCode ?? 0,
            bytesOut: sent.length,
            bytesIn,
          });
        });
      },
    );
    upstream.on('timeout', () => upstream.destroy(new Error('timed out')));
    upstream.on('error', (e) => {
      if (res.headersSent) return res.destroy();
      void refuse(502, `${d.target} did not answer: ${e.message}`, d.target, 'failed');
    });
    upstream.end(sent);
  }

  /**
   * Opens the app's broker socket; returns the folder to bind into the sandbox at /run/egress. A build's
   * socket (`build`) also gets the relay its install step runs under, and takes tunnels whatever the
   * platform's setting: npm reaches its registry over HTTPS through one, and the registry is all it may reach.
   */
  async function open(key: string, app: BrokeredApp, options: { build?: boolean } = {}): Promise<string> {
    const dir = join(deps.dir, key);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    for (const [from, name] of [
      [shimFile, 'shim.cjs'],
      ...(options.build ? [[buildProxyFile, 'build-proxy.cjs']] : []),
    ] as const) {
      copyFileSync(from, join(dir, name));
      chmodSync(join(dir, name), 0o444);
    }
    const server = createServer((req, res) => {
      handle(app, req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      tunnelFor(app, req.url ?? '', socket, head, options.build ? true : undefined).catch(() =>
        socket.destroy(),
      );
    });
    await new Promise<void>((done, fail) => server.listen(join(dir, 'proxy.sock'), done).once('error', fail));
    chmodSync(join(dir, 'proxy.sock'), 0o666);
    servers.set(key, server);
    return dir;
  }

  /**
   * A fixed tunnel from the app's sandbox to one destination an admin chose (a database connector):
   * a unix socket at `/run/egress/SOCKET` inside, connected to `host:port` and nowhere else. The app cannot
   * name another destination, so the address rule for app-named hosts does not apply; each connection is
   * recorded with its bytes. Returns the socket's path on the host.
   */
  async function tunnel(
    key: string,
    app: BrokeredApp,
    socket: string,
    to: { label: string; host: string; port: number },
  ): Promise<string> {
    const dir = join(deps.dir, key);
    const path = join(dir, socket);
    // A unix socket's path holds at most 107 bytes; a longer one would be cut short by the kernel.
    if (Buffer.byteLength(path) > 107)
      throw new Error(`the tunnel socket path is too long (${path}); use a shorter data directory`);
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const open = new Set<Socket>();
    const server = createTcpServer((inside) => {
      open.add(inside);
      inside.once('close', () => open.delete(inside));
      relay(app, inside, tcpConnect(to.port, to.host), to.label, 'TCP');
    });
    await new Promise<void>((done, fail) => server.listen(path, done).once('error', fail));
    chmodSync(path, 0o666);
    tunnels.set(key, [...(tunnels.get(key) ?? []), { server, open }]);
    return path;
  }

  async function close(key: string) {
    for (const t of tunnels.get(key) ?? []) {
      for (const s of t.open) s.destroy();
      await new Promise<void>((done) => t.server.close(() => done()));
    }
    tunnels.delete(key);
    const server = servers.get(key);
    servers.delete(key);
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    }
    rmSync(join(deps.dir, key), { recursive: true, force: true });
  }

  async function closeAll() {
    await Promise.all([...new Set([...servers.keys(), ...tunnels.keys()])].map(close));
  }

  return { open, tunnel, close, closeAll, decide, decideTunnel };
}

export type EgressBroker = ReturnType<typeof createEgressBroker>;
