import { X509Certificate } from 'node:crypto';
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { checkServerIdentity, type PeerCertificate, rootCertificates } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import type { ReplicaLease } from '../replicas/replica-lease.ts';
import { parseSite } from './deployment-types.ts';

/** Set on a request one replica forwards to another: it is never forwarded again (no loops). */
export const hopHeader = 'x-microapp-replica-hop';
const dropped = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  hopHeader,
]);

/**
 * With the local sandbox driver an app runs on one replica. A request for it that reaches another replica is
 * forwarded whole to the replica that runs it (its lease live, its address in `replicas.url`), which signs
 * the caller in, applies the access policy and meters it as for any request: the forwarding replica decides
 * nothing. Where the app runs is read at most once a second per app.
 */
export function createReplicaForwarding(deps: {
  db: Kysely<Database>;
  lease: Pick<ReplicaLease, 'id' | 'addressOf'>;
  /**
   * Where replicas serve TLS themselves (MICROAPP_TLS_CERT_FILE): this replica's certificate with its chain,
   * as PEM (read again when it may have been renewed), and the company's CA certificates
   * (NODE_EXTRA_CA_CERTS). Replicas share one certificate, issued for the platform's name rather than a
   * pod's address: a peer is trusted when it presents that very certificate, or one valid for its address.
   */
  tls?: { certificate: () => string; companyCa: string | null };
}) {
  const known = new Map<string, { at: number; url: string | null }>();
  const tls = deps.tls ? trustFor(deps.tls) : null;

  /**
   * The address of the replica that runs `site`'s app, or last ran it before it was scaled to zero, when
   * that is another live replica; else null. An idle app wakes where it ran, where its data is: another
   * replica does not take a live replica's app over.
   */
  async function ownerOf(site: string): Promise<string | null> {
    const cached = known.get(site);
    if (cached && Date.now() - cached.at < 1000) return cached.url;
    const { name, env } = parseSite(site);
    const row = await deps.db
      .selectFrom('deployments')
      .innerJoin('apps', 'apps.id', 'deployments.app_id')
      .select('deployments.replica_id')
      .where('apps.name', '=', name)
      .where('deployments.env', '=', env)
      .where('deployments.state', 'in', ['running', 'idle'])
      .orderBy('deployments.started_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    const owner = row?.replica_id;
    const url = owner && owner !== deps.lease.id ? await deps.lease.addressOf(owner) : null;
    if (known.size > 10_000) known.clear();
    known.set(site, { at: Date.now(), url });
    return url;
  }

  /** A request to the replica at `target`, over TLS when it serves TLS (verified as `trustFor` says). */
  function toReplica(
    target: string,
    options: { method: string; path: string; headers: Record<string, string | string[]> },
  ): ClientRequest {
    const to = new URL(target);
    const host = to.hostname.replace(/^\[|\]$/g, '');
    if (to.protocol !== 'https:') return httpRequest({ host, port: to.port || 80, ...options });
    // The caller's credentials go only to a peer proven to be a replica: never without TLS verification
    // (the platform's own certificate, or the usual checks with the company CA the process trusts).
    return httpsRequest({
      host,
      port: to.port || 443,
      ...options,
      ...(tls ? { ca: tls.ca(), checkServerIdentity: tls.check } : {}),
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
    });
  }

  /** The caller's headers for the replica that runs the app: marked as forwarded, with the caller's address. */
  function headersFor(
    raw: IncomingMessage['headers'],
    ip: string,
    keep: ReadonlySet<string> = new Set(),
  ): Record<string, string | string[]> {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(raw))
      if (v !== undefined && (!dropped.has(k) || keep.has(k))) headers[k] = v;
    headers[hopHeader] = deps.lease.id;
    // The replica that runs the app believes this only if this replica is in its MICROAPP_TRUSTED_PROXIES.
    const before = raw['x-forwarded-for'];
    headers['x-forwarded-for'] = before ? `${before}, ${ip}` : ip;
    return headers;
  }

  /**
   * A WebSocket (an HTTP upgrade) for an app another replica runs: the handshake goes to that replica, which
   * signs the caller in and decides as for any request; its answer, a switch of protocols or a refusal,
   * comes back as it is, and then the bytes flow both ways. False when this replica should answer.
   */
  async function forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, site: string) {
    if (req.headers[hopHeader]) return false;
    const target = await ownerOf(site).catch(() => null);
    if (!target) return false;
    const upstream = toReplica(target, {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: headersFor(req.headers, req.socket.remoteAddress ?? '', new Set(['connection', 'upgrade'])),
    });
    const statusLine = (res: IncomingMessage) => {
      const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`];
      for (let i = 0; i < res.rawHeaders.length; i += 2)
        lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      return `${lines.join('\r\n')}\r\n\r\n`;
    };
    socket.on('error', () => socket.destroy());
    upstream.on('upgrade', (res, peer, peerHead) => {
      socket.write(statusLine(res));
      if (peerHead.length) socket.write(peerHead);
      if (head.length) peer.write(head);
      peer.on('error', () => socket.destroy());
      socket.on('close', () => peer.destroy());
      peer.on('close', () => socket.destroy());
      peer.pipe(socket);
      socket.pipe(peer);
    });
    // A refusal (not signed in, not allowed): passed on whole, then the connection closes.
    upstream.on('response', (res) => {
      socket.write(statusLine(res));
      res.pipe(socket);
    });
    upstream.on('error', () => {
      known.delete(site);
      socket.end(
        'HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n\r\nthe replica running this app did not answer; try again in a moment\n',
      );
    });
    upstream.end();
    return true;
  }

  /** Forwards the request when another replica runs the app; false when this replica should answer. */
  async function forward(request: FastifyRequest, reply: FastifyReply, site: string): Promise<boolean> {
    if (request.headers[hopHeader]) return false;
    const target = await ownerOf(site).catch(() => null);
    if (!target) return false;
    const headers = headersFor(request.headers, request.ip);
    reply.hijack();
    const answer = (res: IncomingMessage) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !dropped.has(k)) out[k] = v;
      reply.raw.writeHead(res.statusCode ?? 502, out);
      res.pipe(reply.raw);
    };
    const upstream = toReplica(target, { method: request.method, path: request.url, headers });
    upstream.on('response', answer);
    upstream.on('error', () => {
      known.delete(site);
      if (!reply.raw.headersSent) reply.raw.writeHead(502, { 'content-type': 'text/plain' });
      reply.raw.end('the replica running this app did not answer; try again in a moment');
    });
    request.raw.pipe(upstream);
    return true;
  }

  return { forward, forwardUpgrade };
}

const pemBlocks = (text: string) =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

/**
 * How one replica checks another's TLS: the usual roots, the company CA and the platform's own certificate
 * (a self-signed one is its own root) as trust anchors; then the peer's certificate must be the platform's
 * own, or valid for the address it was reached at.
 */
function trustFor(settings: { certificate: () => string; companyCa: string | null }) {
  const anchors = [...rootCertificates, ...pemBlocks(settings.companyCa ?? '')];
  let own = { at: 0, fingerprint: '', ca: anchors };
  // Read again at most every 30 s (a renewal), and at once when a peer shows another certificate.
  const current = (fresh = false) => {
    if (fresh || Date.now() - own.at > 30_000) {
      const pem = settings.certificate();
      own = {
        at: Date.now(),
        fingerprint: new X509Certificate(pem).fingerprint256,
        ca: [...anchors, ...pemBlocks(pem)],
      };
    }
    return own;
  };
  return {
    ca: () => current().ca,
    check(hostname: string, peer: PeerCertificate) {
      if (peer.fingerprint256 === current().fingerprint) return undefined;
      // Renewed since it was read: look again before refusing.
      if (peer.fingerprint256 === current(true).fingerprint) return undefined;
      return checkServerIdentity(hostname, peer);
    },
  };
}

export type ReplicaForwarding = ReturnType<typeof createReplicaForwarding>;
