import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { BrokeredApp, EgressBroker } from '../egress/egress-broker.ts';
import { parseSite } from './deployment-types.ts';
import { createPodTokenVerifier, type PodCaller } from './kubernetes-artifacts.ts';
import { egressTokenAudience, type KubernetesSettings } from './kubernetes-settings.ts';

/** How long a checked token is taken again without checking its signature (never past its own end). */
const checkedForMs = 60_000;

type Refusal = { status: number; reason: string; app?: BrokeredApp };

/**
 * The egress broker as the cluster's pods reach it: one TLS listener (the `microapp-egress` Service) in
 * place of the local driver's socket per instance. A socket cannot say which app calls here, so each call
 * carries the pod's own projected service-account token, for the audience `microapp-egress`, in
 * `Proxy-Authorization`. The egress sidecar adds it: the token is mounted in the sidecar only, so the app's
 * code never holds it (kubernetes-sidecar.ts). The token names the app's service account, and so its app and
 * environment; the app must be rendered for the cluster, approved and not held. Then the request or tunnel
 * goes through the same rules, organization policy, DLP, connector credentials and records as a local
 * instance's. Nothing without a valid token reaches the rules.
 */
export function createClusterEgress(deps: {
  db: Kysely<Database>;
  broker: Pick<EgressBroker, 'serve' | 'connect' | 'refuse' | 'refuseConnect' | 'flushRepeats'>;
  settings: Pick<KubernetesSettings, 'namespace' | 'tokenIssuer' | 'tokenJwks'>;
  /** Why an app may not run now (stopped for inactivity, decommissioned): its pods then get no way out. */
  hold: (appId: string) => Promise<{ message: string } | null>;
  logger: Logger;
}) {
  const verify = createPodTokenVerifier(deps.settings, {
    audience: egressTokenAudience,
    what: 'send calls through the egress broker',
  });
  // Tokens already checked (by their hash), until the sooner of a minute and their own end.
  const checked = new Map<string, { caller: PodCaller; until: number }>();

  async function callerOf(authorization: string | undefined): Promise<PodCaller> {
    const key = createHash('sha256')
      .update(authorization ?? '')
      .digest('base64url');
    const known = checked.get(key);
    if (known && known.until > Date.now()) return known.caller;
    const caller = await verify(authorization);
    if (checked.size >= 10_000) checked.clear();
    checked.set(key, { caller, until: Math.min(Date.now() + checkedForMs, caller.expiresAt) });
    return caller;
  }

  /** The app whose pod calls, as the broker knows apps; or why its pod may not send anything now. */
  async function appOf(caller: PodCaller): Promise<BrokeredApp | Refusal> {
    const { name, env } = parseSite(caller.site);
    const row = await deps.db
      .selectFrom('apps')
      .innerJoin('cluster_routes', 'cluster_routes.app_id', 'apps.id')
      .select([
        'apps.id',
        'apps.state',
        'apps.manifest',
        'apps.tier',
        'apps.owner',
        'cluster_routes.version',
        'cluster_routes.namespace',
      ])
      .where('apps.name', '=', name)
      .where('cluster_routes.env', '=', env)
      .executeTakeFirst();
    if (!row || row.namespace !== deps.settings.namespace)
      return {
        status: 403,
        reason: `${caller.site} is not an app rendered for the cluster's namespace ${deps.settings.namespace}: its pods send nothing`,
      };
    const manifest = JSON.parse(row.manifest) as Manifest;
    const app: BrokeredApp = {
      name,
      appId: row.id,
      version: row.version,
      manifest,
      department: manifest.audience?.department ?? null,
      tier: row.tier,
      owner: row.owner,
    };
    if (row.state !== 'approved')
      return {
        app,
        status: 403,
        reason: `${name} is ${row.state.replace('_', ' ')}: its pods' outbound calls are refused until it is approved again`,
      };
    const held = await deps.hold(row.id);
    if (held) return { app, status: 403, reason: `its pods' outbound calls are refused: ${held.message}` };
    return app;
  }

  /** Who calls, or the refusal: 407 without a token the platform takes, 403 for a pod that may not call. */
  async function admit(req: IncomingMessage): Promise<BrokeredApp | Refusal> {
    let caller: PodCaller;
    try {
      caller = await callerOf(req.headers['proxy-authorization']);
    } catch (error) {
      const e = error as AppError;
      const status = e instanceof AppError && e.code === 'forbidden' ? 403 : 407;
      return { status, reason: e.message };
    }
    return appOf(caller);
  }

  function refusedPlainly(req: IncomingMessage, r: Refusal) {
    deps.logger.warn(
      { remote: req.socket.remoteAddress, status: r.status, reason: r.reason },
      "refused a call at the cluster's egress broker",
    );
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse) {
    const admitted = await admit(req);
    if ('appId' in admitted) return deps.broker.serve(admitted, req, res);
    if (admitted.app) return deps.broker.refuse(admitted.app, req, res, admitted.status, admitted.reason);
    refusedPlainly(req, admitted);
    const body = JSON.stringify({ error: 'egress_denied', detail: admitted.reason });
    res.writeHead(admitted.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...(admitted.status === 407 ? { 'proxy-authenticate': 'Bearer realm="microapp-egress"' } : {}),
    });
    res.end(body);
  }

  async function onConnect(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const admitted = await admit(req);
    if ('appId' in admitted) return deps.broker.connect(admitted, req, socket, head);
    if (admitted.app)
      return deps.broker.refuseConnect(admitted.app, req, socket, admitted.status, admitted.reason);
    refusedPlainly(req, admitted);
    const status = admitted.status === 407 ? '407 Proxy Authentication Required' : '403 Forbidden';
    socket.end(
      `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${admitted.reason}\n`,
    );
  }

  let server: Server | null = null;
  const open = new Set<Socket>();

  /** Listens on `host:port` over TLS with the given certificate; returns the server and its port. */
  async function listen(at: { host: string; port: number }, tls: { cert: string; key: string }) {
    server = createServer({ ...tls, minVersion: 'TLSv1.2' }, (req, res) => {
      onRequest(req, res).catch((error: Error) => {
        deps.logger.error({ err: error.message }, "the cluster's egress broker failed a call");
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      onConnect(req, socket, head).catch(() => socket.destroy());
    });
    server.on('secureConnection', (socket: Socket) => {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
    });
    const s = server;
    await new Promise<void>((done, fail) => s.listen(at.port, at.host, done).once('error', fail));
    return { server: s, port: (s.address() as AddressInfo).port };
  }

  async function close() {
    const s = server;
    server = null;
    if (s) {
      for (const socket of open) socket.destroy();
      await new Promise<void>((done) => s.close(() => done()));
    }
    await deps.broker.flushRepeats();
  }

  return { listen, close };
}

export type ClusterEgress = ReturnType<typeof createClusterEgress>;
