import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { randomSecret } from '../../ids.ts';
import { type DevUser, devUsers } from './dev-users.ts';

/** A running development IdP: where it is, the client the platform uses, and how to stop it. */
export type DevIdp = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
};

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function pickerPage(uid: string, clientName: string): string {
  const buttons = devUsers
    .map(
      (u) => `<li><button name="email" value="${escapeHtml(u.email)}">${escapeHtml(u.name)}</button>
      <span>${escapeHtml(u.email)} · ${escapeHtml(u.about)}</span></li>`,
    )
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Development sign-in</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}
li{list-style:none;margin:.5rem 0}button{min-width:11rem;padding:.4rem;margin-right:.8rem}
.warn{background:#fff4ce;padding:.6rem;border-radius:4px}</style></head><body>
<h1>Sign in to ${escapeHtml(clientName)}</h1>
<p class="warn">Development identity provider: anyone on this machine can pick any user. Never use it in production.</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login"><ul>${buttons}</ul></form></body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10_000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function claimsOf(user: DevUser) {
  return {
    sub: user.sub,
    email: user.email,
    email_verified: true,
    name: user.name,
    department: user.department,
    groups: user.groups,
    ...(user.manager ? { manager: user.manager } : {}),
  };
}

/**
 * Starts the embedded OIDC provider (oidc-provider) on loopback with the seeded users and one
 * confidential client whose redirect URI is the platform's callback. Authorization code + PKCE only.
 */
export async function startDevIdp(options: {
  port: number;
  host: string;
  redirectUri: string;
}): Promise<DevIdp> {
  const clientId = 'microapp-dev';
  const clientSecret = randomSecret();
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomSecret(8), use: 'sig', alg: 'RS256' };

  const server: Server = createServer();
  await new Promise<void>((done) => server.listen(options.port, options.host, done));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${options.host === '::1' ? '[::1]' : options.host}:${port}`;

  // oidc-provider warns that Node 20 is not its preferred LTS and that its store is in memory. Both are
  // known and intended for a development IdP (sessions vanish on restart); keep the console clean.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes('oidc-provider WARNING')) warn(...args);
  };
  const { default: Provider } = await import('oidc-provider').finally(() => {
    console.warn = warn;
  });
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes('oidc-provider WARNING')) warn(...args);
  };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        client_name: 'microapp',
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomSecret()] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'department', 'groups', 'manager'],
    },
    scopes: ['openid', 'email', 'profile'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const user = devUsers.find((u) => u.sub === sub);
      if (!user) return undefined;
      return { accountId: sub, claims: async () => claimsOf(user) };
    },
    // First-party client: consent is implied, so no consent screen.
    async loadExistingGrant(ctx) {
      const session = ctx.oidc.session!;
      const client = ctx.oidc.client!;
      const existing = session.grantIdFor(client.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId! });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      session.grantIdFor(client.clientId, grant.jti);
      return grant;
    },
    ttl: { Session: 8 * 3600, Interaction: 600, Grant: 8 * 3600, AccessToken: 600, IdToken: 600 },
  });
  console.warn = warn;
  provider.on('server_error', () => {});
  const callback = provider.callback();

  server.on('request', async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer);
    const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(url.pathname);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (match[1] !== details.uid) throw new Error('interaction mismatch');
      if (!match[2] && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        return res.end(pickerPage(details.uid, 'microapp'));
      }
      if (match[2] && req.method === 'POST') {
        const form = await readForm(req);
        const user = devUsers.find((u) => u.email === form.get('email'));
        if (!user) {
          res.writeHead(400, { 'content-type': 'text/plain' });
          return res.end('unknown development user');
        }
        return provider.interactionFinished(
          req,
          res,
          { login: { accountId: user.sub } },
          {
            mergeWithLastSubmission: false,
          },
        );
      }
      res.writeHead(405, { 'content-type': 'text/plain' });
      res.end('method not allowed');
    } catch (error) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`sign-in failed: ${(error as Error).message}`);
    }
  });

  return {
    issuer,
    clientId,
    clientSecret,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
