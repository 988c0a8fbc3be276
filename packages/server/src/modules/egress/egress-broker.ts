import { chmodSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
  connect as tcpConnect,
} from 'node:net';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { DlpFinding } from './dlp.ts';
import { createEgressRecords } from './egress-records.ts';
import { createEgressRules, type EgressRuleDeps } from './egress-rules.ts';
import { createTunnels } from './egress-tunnels.ts';
import { type BrokeredApp, kindName, maxBody } from './egress-types.ts';
import { maxCountedAnswer, tokenUsage } from './model-calls.ts';

export { type DlpInput, type DlpVerdict, dlpVerdictOf } from './egress-dlp.ts';
export type { BrokeredApp, EgressDecision } from './egress-types.ts';

export const shimFile = join(import.meta.dirname, 'shim.cjs');
export const buildProxyFile = join(import.meta.dirname, 'build-proxy.cjs');

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
export function createEgressBroker(
  deps: EgressRuleDeps & {
    db: Kysely<Database>;
    clock: Clock;
    audit: Pick<AuditService, 'record'>;
    dir: string;
    onBytes?: (app: string, host: string, bytesOut: number, bytesIn: number) => void;
    /** Whether apps may open CONNECT tunnels (opaque to DLP); off unless the platform turns them on. */
    tunnels?: boolean;
    timeoutMs?: number;
  },
) {
  const records = createEgressRecords(deps);
  const { record, recordDlp } = records;
  // Each running app's own secrets, for the model-call check only; never logged, gone when the app is.
  const secretsByApp = new WeakMap<BrokeredApp, Record<string, string>>();
  const rules = createEgressRules({ ...deps, secretsOf: (app) => secretsByApp.get(app) });
  const { decide } = rules;
  const { decideTunnel, tunnelFor, refuseTunnel, relay } = createTunnels(deps, rules, records);
  const servers = new Map<string, Server>();
  const appOf = new Map<string, string>();
  const tunnels = new Map<string, { server: TcpServer; open: Set<Socket> }[]>();

  /** Records a refusal (audited, folded when it repeats) and tells the app why, as JSON. */
  async function refuseWith(
    app: BrokeredApp,
    method: string,
    res: ServerResponse,
    r: { status: number; reason: string; host: string | null; decision?: string; findings?: DlpFinding[] },
  ) {
    const decision = r.decision ?? 'denied';
    await record(app, {
      host: r.host,
      method,
      decision,
      status: r.status,
      bytesOut: 0,
      bytesIn: 0,
      reason: r.reason,
      ...(r.findings ? { findings: r.findings } : {}),
    });
    const body = JSON.stringify({
      error: decision === 'blocked_dlp' ? 'egress_blocked' : 'egress_denied',
      detail: r.reason,
    });
    res.writeHead(r.status, {
      'content-type': 'application/json',
      'x-microapp-egress': decision,
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  async function handle(app: BrokeredApp, req: IncomingMessage, res: ServerResponse, build: boolean) {
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
    const refuse = (
      status: number,
      reason: string,
      host: string | null,
      decision = 'denied',
      findings?: DlpFinding[],
    ) => refuseWith(app, method, res, { status, reason, host, decision, findings });
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
    const d = await decide(app, req, body, { build });
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
        // A model's answer is kept (to a limit) to count the tokens it says it used.
        const answer: Buffer[] = [];
        up.on('data', (c: Buffer) => {
          bytesIn += c.length;
          if (d.model && bytesIn <= maxCountedAnswer) answer.push(c);
        });
        up.pipe(res);
        up.on('end', () => {
          deps.onBytes?.(app.name, d.target, sent.length, bytesIn);
          const contentType = up.headers['content-type'];
          const encoded = up.headers['content-encoding'] && up.headers['content-encoding'] !== 'identity';
          void record(app, {
            host: d.target,
            method,
            decision: 'allowed',
            status: up.statusCode ?? 0,
            bytesOut: sent.length,
            bytesIn,
            ...(d.model
              ? {
                  model: {
                    name: d.model.model,
                    tokens:
                      bytesIn <= maxCountedAnswer && !encoded
                        ? tokenUsage(contentType, Buffer.concat(answer))
                        : null,
                  },
                }
              : {}),
          });
        });
      },
    );
    upstream.on('timeout', () => upstream.destroy(new Error('timed out')));
    upstream.on('error', (e: NodeJS.ErrnoException) => {
      if (res.headersSent) return res.destroy();
      // A certificate the broker does not trust is named as such: it is not a policy decision.
      const tls = /CERT|SELF_SIGNED|TLS|SSL/.test(e.code ?? '');
      void refuse(
        502,
        tls
          ? `${d.target}'s TLS certificate could not be verified (${e.code}): the broker trusts the public CAs only`
          : `${d.target} did not answer: ${e.message}`,
        d.target,
        'failed',
      );
    });
    upstream.end(sent);
  }

  /**
   * Opens the app's broker socket; returns the folder to bind into the sandbox at /run/egress. A build's
   * socket (`build`) also gets the relay its install step runs under, and takes tunnels whatever the
   * platform's setting: npm reaches its registry over HTTPS through one, and the registry is all it may reach.
   */
  async function open(
    key: string,
    app: BrokeredApp,
    options: { build?: boolean; secrets?: Record<string, string> } = {},
  ): Promise<string> {
    if (options.secrets) secretsByApp.set(app, options.secrets);
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
      handle(app, req, res, Boolean(options.build)).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      tunnelFor(app, req.url ?? '', socket, head, Boolean(options.build)).catch(() => socket.destroy());
    });
    await new Promise<void>((done, fail) => server.listen(join(dir, 'proxy.sock'), done).once('error', fail));
    chmodSync(join(dir, 'proxy.sock'), 0o666);
    servers.set(key, server);
    appOf.set(key, app.name);
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
    // Refusals that came again since they were last audited: their count, now that nothing more will come.
    const name = appOf.get(key);
    appOf.delete(key);
    if (name) await records.flushRepeats(name);
  }

  async function closeAll() {
    await Promise.all([...new Set([...servers.keys(), ...tunnels.keys()])].map(close));
  }

  /**
   * One request or tunnel of an app whose caller was identified another way than its own socket: a pod on
   * the cluster, through its egress sidecar and the pod's service-account token
   * (runtime/kubernetes-egress.ts). The same rules, policy, DLP and records as a local instance's socket.
   */
  const serve = (app: BrokeredApp, req: IncomingMessage, res: ServerResponse) => handle(app, req, res, false);
  const connect = (app: BrokeredApp, req: IncomingMessage, socket: Duplex, head: Buffer) =>
    tunnelFor(app, req.url ?? '', socket, head, false);

  /** A refusal of an app's call before the rules are asked (its pod's app is held): recorded as theirs are. */
  const refuse = (
    app: BrokeredApp,
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    reason: string,
  ) => refuseWith(app, req.method ?? 'GET', res, { status, reason, host: req.headers.host ?? null });
  /** The same for a tunnel (`CONNECT`). */
  const refuseConnect = (
    app: BrokeredApp,
    req: IncomingMessage,
    socket: Duplex,
    status: number,
    reason: string,
  ) => refuseTunnel(app, socket, { status, reason, host: req.url ?? null });

  return {
    open,
    tunnel,
    close,
    closeAll,
    decide,
    decideTunnel,
    serve,
    connect,
    refuse,
    refuseConnect,
    /** Audits the refusals that came again since they were last audited (every app's). */
    flushRepeats: () => records.flushRepeats(),
  };
}

export type EgressBroker = ReturnType<typeof createEgressBroker>;
