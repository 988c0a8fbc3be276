import { randomBytes } from 'node:crypto';
import {
  Agent,
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  STATUS_CODES,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { sendProblem } from '../../api/error-handler.ts';
import type { Clock } from '../../clock.ts';
import type { ReadCache } from '../../db/read-cache.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { newId } from '../../ids.ts';
import type { Tracing } from '../../tracing.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { CatalogService } from '../catalog/catalog-service.ts';
import { type LoginService, safeReturnTo } from '../identity/login-service.ts';
import type { Principal } from '../identity/principal.ts';
import type { PolicyEngine } from '../policy/policy-engine.ts';
import type { TokenService } from '../tokens/token-service.ts';
import type { UsageService } from '../usage/usage-service.ts';
import type { AppHosts } from './app-hosts.ts';
import { appCookieNames, hostOfOrigin } from './browser-isolation.ts';
import { upstreamTarget } from './cluster-routes.ts';
import { type DeploymentService, parseSite } from './deployment-service.ts';
import { type Caller, createAdmission } from './gateway-admission.ts';
import { answerHeaders, createMeter, forwardedHeaders } from './gateway-forward.ts';
import { errorPage } from './gateway-pages.ts';
import type { ReplicaForwarding } from './replica-forwarding.ts';

/**
 * The identity-aware gateway for `{app}.apps.localhost`: requires a signed-in user (API token or
 * session), applies the app's access policy, and forwards to the instance's unix socket with a
 * short-lived signed identity; the user's cookies and tokens never reach the app.
 */
export function createGateway(deps: {
  tokens: Pick<TokenService, 'authenticate'>;
  login: Pick<LoginService, 'sessionPrincipal' | 'redeemAppCode'>;
  catalog: Pick<CatalogService, 'get'>;
  engine: Pick<PolicyEngine, 'decideKept' | 'log'> | null;
  deployments: Pick<DeploymentService, 'instanceFor' | 'instanceOf' | 'identityToken' | 'clusterInstance'>;
  /** Requests for an app another replica runs go there (replica-forwarding.ts); absent: one replica. */
  forwarding?: Pick<ReplicaForwarding, 'forward' | 'forwardUpgrade'>;
  audit: Pick<AuditService, 'record'>;
  usage: Pick<UsageService, 'record'>;
  db: Kysely<Database>;
  /** The platform's own URL, where browsers sign in. */
  platformUrl: () => string;
  /** Which app host a request is for. */
  hosts: Pick<AppHosts, 'siteOf'>;
  /** Why an app may not be served now (stopped for inactivity, decommissioned), or null. */
  hold: (appId: string) => Promise<{ status: number; message: string } | null>;
  clock: Clock;
  secureCookies: boolean;
  /** OpenTelemetry: a span per forwarded request, whose `traceparent` the app receives. */
  tracing?: Pick<Tracing, 'start'>;
  /** What every request reads, kept until it changes. */
  cache: ReadCache;
}) {
  const cookieBase = { httpOnly: true, sameSite: 'lax' as const, secure: deps.secureCookies, path: '/' };
  // The app host's own cookies: set by the gateway only, never forwarded to the app.
  const { session: appSessionCookie, state: appStateCookie } = appCookieNames(deps.secureCookies);
  const { principalOf, admit } = createAdmission({ ...deps, appSessionCookie });
  const meter = createMeter(deps);
  // Connections to instances are kept between requests (per socket or Service address, as the agent names
  // them), idle at most 2 s or less than the app announces in its Keep-Alive header.
  const upstreamAgent = new Agent({ keepAlive: true, timeout: 2000, maxFreeSockets: 64 });

  /** The end of browser sign-in: exchange the one-time code for a session on this app's host. */
  async function callback(request: FastifyRequest, reply: FastifyReply, name: string) {
    const q = new URL(request.url, 'http://app').searchParams;
    const code = q.get('code');
    const state = request.cookies?.[appStateCookie];
    if (!code || !state)
      throw new AppError(
        'bad_request',
        `this sign-in link was not started in this browser; open ${name} again`,
      );
    const session = await deps.login.redeemAppCode(code, name, state);
    reply.clearCookie(appStateCookie, cookieBase);
    reply.setCookie(appSessionCookie, session.cookie, {
      ...cookieBase,
      expires: new Date(session.expiresAt),
    });
    reply.header('cache-control', 'no-store');
    return reply.redirect(safeReturnTo(q.get('path') ?? '/'), 302);
  }

  /** A browser without a session goes to the platform to sign in, and comes back with a one-time code. */
  function startSignIn(request: FastifyRequest, reply: FastifyReply, name: string) {
    const state = randomBytes(32).toString('base64url');
    // `__Host-` cookies must have Path=/: a sibling app can neither set nor toss this one.
    reply.setCookie(appStateCookie, state, { ...cookieBase, maxAge: 600 });
    const target = new URL(`/auth/apps/${name}`, deps.platformUrl());
    target.searchParams.set('state', state);
    target.searchParams.set('path', request.url);
    return reply.redirect(target.href, 302);
  }

  /** Handles the request when its Host names an app; returns false for platform requests. */
  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    // The host label names the site (app and environment); sessions and sign-in belong to the site.
    const site = deps.hosts.siteOf(request.headers.host);
    if (!site) return false;
    const { name } = parseSite(site);
    const fail = (error: AppError) => {
      // People in a browser get a page that says what happened and what to do; scripts get problem+json.
      if (/text\/html/.test(request.headers.accept ?? '')) {
        const consoleUrl = deps.platformUrl();
        const ask = consoleUrl ? `${consoleUrl}/apps/${name}?ask=1` : null;
        reply
          .status(error.status)
          .type('text/html; charset=utf-8')
          .send(errorPage(error, request.id, ask));
      } else sendProblem(reply, request, error);
      return true;
    };
    if (!deps.deployments.instanceOf(site) && (await deps.forwarding?.forward(request, reply, site)))
      return true;
    if (request.url.split('?')[0] === '/_microapp/callback') {
      try {
        await callback(request, reply, site);
      } catch (error) {
        return fail(error instanceof AppError ? error : new AppError('bad_request', String(error)));
      }
      return true;
    }
    let principal: Principal | null;
    try {
      await deps.cache.begin();
      principal = await principalOf(request, site);
    } catch (error) {
      return fail(error instanceof AppError ? error : new AppError('internal', String(error)));
    }
    const browser =
      (request.method === 'GET' || request.method === 'HEAD') &&
      /text\/html/.test(request.headers.accept ?? '') &&
      !request.headers.authorization;
    if (!principal && browser) {
      startSignIn(request, reply, site);
      return true;
    }
    if (!principal)
      return fail(
        new AppError(
          'unauthenticated',
          `sign in to use ${name}: \`microapp login\`, or send an API token as Bearer`,
        ),
      );
    let admitted: Awaited<ReturnType<typeof admit>>;
    try {
      admitted = await admit(request, site, principal);
    } catch (error) {
      return fail(error instanceof AppError ? error : new AppError('internal', String(error)));
    }
    const { app, instance } = admitted;
    const web = app.manifest.web ?? {};
    // Counted from the moment it is chosen, so an upgrade waits for this request before stopping it.
    instance.inflight++;
    instance.lastRequestAt = Date.now();
    const metered = meter(request, principal, app, instance.version);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      instance.inflight--;
      metered.record();
    };
    reply.raw.on('close', finish);

    const headers = forwardedHeaders(request, await deps.deployments.identityToken(principal, name), false);
    if (metered.traceparent) headers.traceparent = metered.traceparent;
    reply.hijack();
    const answer = (res: IncomingMessage) => {
      const out = answerHeaders(res.headers, web.embedBy, request.headers, [
        appSessionCookie,
        appStateCookie,
      ]);
      metered.status = res.statusCode ?? 502;
      reply.raw.writeHead(metered.status, out);
      res.on('data', (chunk: Buffer) => (metered.bytesOut += chunk.length));
      res.pipe(reply.raw);
    };
    // A GET or HEAD without a body may be sent again (docs/runtime.md): repeating it changes nothing.
    const bodyless =
      (request.method === 'GET' || request.method === 'HEAD') &&
      request.headers['content-length'] === undefined &&
      request.headers['transfer-encoding'] === undefined;
    let current: ClientRequest | null = null;
    const send = (agent: Agent | false) => {
      const upstream = httpRequest(
        { ...upstreamTarget(instance), agent, method: request.method, path: request.url, headers },
        answer,
      );
      current = upstream;
      upstream.on('close', () => {
        if (current === upstream) finish();
      });
      upstream.on('error', () => {
        // The app closed a kept connection as this request went out on it: once more, on a new one.
        if (upstream.reusedSocket && bodyless && agent && !reply.raw.headersSent && !reply.raw.destroyed)
          return send(false);
        metered.status ||= 502;
        if (!reply.raw.headersSent) reply.raw.writeHead(502, { 'content-type': 'text/plain' });
        reply.raw.end('the app did not answer');
      });
      if (bodyless) upstream.end();
      else request.raw.pipe(upstream);
    };
    // Request bodies stream through; nothing is buffered.
    request.raw.on('data', (chunk: Buffer) => (metered.bytesIn += chunk.length));
    send(upstreamAgent);
    return true;
  }

  /**
   * A WebSocket (any HTTP upgrade) to an app host: the same sign-in, policy and identity as a request,
   * then the two connections are joined. Returns false when the host is not an app's.
   */
  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<boolean> {
    const site = deps.hosts.siteOf(req.headers.host);
    if (!site) return false;
    if (
      !deps.deployments.instanceOf(site) &&
      (await deps.forwarding?.forwardUpgrade(req, socket, head, site))
    )
      return true;
    const { name } = parseSite(site);
    const caller: Caller = {
      headers: req.headers,
      url: req.url ?? '/',
      method: req.method ?? 'GET',
      id: newId('request'),
      ip: req.socket.remoteAddress ?? '',
      cookies: fastifyCookie.parse(req.headers.cookie ?? ''),
    };
    const refuse = (status: number, message: string) => {
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n\r\n${message}\n`,
      );
    };
    socket.on('error', () => socket.destroy());
    let admitted: Awaited<ReturnType<typeof admit>>;
    let principal: Principal | null;
    try {
      await deps.cache.begin();
      principal = await principalOf(caller, site);
      if (!principal) {
        refuse(401, `sign in to use ${name}`);
        return true;
      }
      // A browser sends the app's cookie with a WebSocket opened by any site: only the app's own pages may.
      const origin = req.headers.origin;
      if (!req.headers.authorization && origin && hostOfOrigin(origin) !== req.headers.host) {
        refuse(403, `${name} accepts WebSockets from its own pages only`);
        return true;
      }
      admitted = await admit(caller, site, principal);
    } catch (error) {
      const e = error instanceof AppError ? error : new AppError('internal', 'the gateway failed');
      refuse(e.status, e.message);
      return true;
    }
    const { app, instance } = admitted;
    const headers = forwardedHeaders(caller, await deps.deployments.identityToken(principal, name), true);
    instance.lastRequestAt = Date.now();
    const metered = meter(caller, principal, app, instance.version);
    if (metered.traceparent) headers.traceparent = metered.traceparent;
    const upstream = httpRequest({
      ...upstreamTarget(instance),
      method: caller.method,
      path: caller.url,
      headers,
    });
    upstream.on('upgrade', (res, upSocket, upHead) => {
      metered.status = res.statusCode ?? 101;
      const lines = [`HTTP/1.1 ${metered.status} ${res.statusMessage ?? STATUS_CODES[metered.status]}`];
      for (let i = 0; i < res.rawHeaders.length; i += 2)
        if (res.rawHeaders[i]!.toLowerCase() !== 'set-cookie')
          lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upHead.length) upSocket.unshift(upHead);
      if (head.length) socket.unshift(head);
      socket.on('data', (chunk: Buffer) => {
        metered.bytesIn += chunk.length;
        instance.lastRequestAt = Date.now();
      });
      upSocket.on('data', (chunk: Buffer) => (metered.bytesOut += chunk.length));
      upSocket.on('error', () => socket.destroy());
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        instance.lastRequestAt = Date.now();
        socket.destroy();
        upSocket.destroy();
        metered.record();
      };
      socket.on('close', close);
      upSocket.on('close', close);
      upSocket.pipe(socket).pipe(upSocket);
    });
    // The app declined the upgrade: the caller gets its status.
    upstream.on('response', (res) => {
      metered.status = res.statusCode ?? 502;
      refuse(metered.status, `${name} did not accept the upgrade`);
      res.resume();
      metered.record();
    });
    upstream.on('error', () => {
      metered.status ||= 502;
      refuse(502, `${name} did not answer`);
      metered.record();
    });
    upstream.end();
    return true;
  }

  return { handle, upgrade };
}
