import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { devSignIn } from '../../cli/src/login-flow.ts';

/** An MCP client's OAuth state kept in memory, as an agent on a laptop keeps it on disk. */
export class MemoryOAuthProvider implements OAuthClientProvider {
  readonly redirectUrl = 'http://127.0.0.1:9/callback';
  readonly clientMetadata: OAuthClientMetadata;
  info: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  authorizationUrl: URL | undefined;
  constructor(agent: { name: string; version?: string; model?: string }) {
    this.clientMetadata = {
      client_name: agent.name,
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...(agent.version ? { software_version: agent.version } : {}),
      ...(agent.model ? { model: agent.model } : {}),
    } as OAuthClientMetadata;
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

type Jar = Map<string, Map<string, string>>;
const cookieOf = (jar: Jar, url: URL) =>
  [...(jar.get(url.host) ?? new Map())].map(([k, v]) => `${k}=${v}`).join('; ');

/** Signs a person in at the authorization URL and reads the consent page: its URL, cookies and CSRF token. */
export async function openConsent(authorizationUrl: URL, email: string) {
  const { url, jar } = await devSignIn(
    authorizationUrl.href,
    email,
    (u) => u.pathname === '/oauth/authorize',
  );
  const cookie = cookieOf(jar, url);
  const page = await fetch(url, { headers: { cookie }, redirect: 'manual' });
  const html = await page.text();
  assert.equal(page.status, 200, html.slice(0, 300));
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  assert.ok(csrf, 'the consent page carries a CSRF token');
  return { url, cookie, csrf, html };
}

/** The person's answer on the consent page; returns where the browser is sent (the agent's redirect URI). */
export async function answerConsent(
  consent: { url: URL; cookie: string; csrf: string },
  form: Record<string, string>,
): Promise<{ status: number; location: URL | null; text: string }> {
  const res = await fetch(consent.url, {
    method: 'POST',
    headers: { cookie: consent.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: consent.csrf, ...form }).toString(),
    redirect: 'manual',
  });
  const location = res.headers.get('location');
  return { status: res.status, location: location ? new URL(location) : null, text: await res.text() };
}

/**
 * An agent connected through the official MCP SDK: it finds the platform's OAuth server from /mcp's 401,
 * registers itself, and the person consents (signing in through the dev IdP); then it connects again.
 */
export async function connectAgent(
  server: { url: string },
  email: string,
  agent: { name: string; version?: string; model?: string } = {
    name: 'test-agent',
    version: '1.0.0',
    model: 'claude-sonnet-4-5',
  },
  form: Record<string, string> = { decision: 'allow', days: '7' },
) {
  const provider = new MemoryOAuthProvider(agent);
  const url = new URL('/mcp', server.url);
  const first = new Client({ name: agent.name, version: agent.version ?? '0.0.0' });
  await assert.rejects(
    first.connect(new StreamableHTTPClientTransport(url, { authProvider: provider })),
    UnauthorizedError,
  );
  assert.ok(provider.authorizationUrl, 'the SDK asked the person to authorize');
  const consent = await openConsent(provider.authorizationUrl, email);
  const answered = await answerConsent(consent, form);
  assert.equal(answered.status, 302, answered.text);
  const code = answered.location?.searchParams.get('code');
  assert.ok(code, `the consent returned a code: ${answered.location?.href}`);
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await transport.finishAuth(code);
  const client = new Client({ name: agent.name, version: agent.version ?? '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  return { client, provider, consent };
}

/** A tool call's structured answer, with its text for assertion messages. */
export async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
  options: Parameters<Client['callTool']>[2] = {},
) {
  const result = await client.callTool({ name, arguments: args }, undefined, options);
  const text = (result.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('\n');
  return {
    result,
    data: (result.structuredContent ?? {}) as Record<string, any>,
    text,
    isError: Boolean(result.isError),
  };
}

/**
 * An agent's access token obtained the way any OAuth client gets one (RFC 7591 registration, PKCE, the
 * person's consent, the code exchanged), without an MCP session: for an agent that then uses git.
 */
export async function agentToken(
  server: { url: string },
  email: string,
  options: { name?: string; model?: string; scope?: string } = {},
): Promise<string> {
  const redirectUri = 'http://127.0.0.1:9/callback';
  const reg = await fetch(new URL('/oauth/register', server.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: options.name ?? 'git-agent',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      model: options.model ?? 'claude-sonnet-4-5',
    }),
  });
  const client = (await reg.json()) as { client_id: string };
  assert.equal(reg.status, 201, JSON.stringify(client));
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL('/oauth/authorize', server.url);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: redirectUri,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: 'git',
    ...(options.scope ? { scope: options.scope } : {}),
  }).toString();
  const answered = await answerConsent(await openConsent(authorize, email), { decision: 'allow', days: '7' });
  const code = answered.location?.searchParams.get('code');
  assert.ok(code, `the consent returned a code: ${answered.text.slice(0, 300)}`);
  const res = await fetch(new URL('/oauth/token', server.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      client_id: client.client_id,
      redirect_uri: redirectUri,
    }).toString(),
  });
  const token = (await res.json()) as { access_token?: string };
  assert.ok(token.access_token?.startsWith('maa_'), JSON.stringify(token));
  return String(token.access_token);
}
