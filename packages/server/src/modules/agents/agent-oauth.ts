import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.ts';
import type { Database } from '../../db/schema.ts';
import type { AgentClientsTable } from '../../db/schema-agents.ts';
import { AppError } from '../../errors.ts';
import { newId, randomSecret } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { Principal } from '../identity/principal.ts';
import {
  type AgentScope,
  agentScopes,
  type DelegationLimits,
  defaultLimits,
  delegationDays,
} from './delegation-types.ts';

const codeTtlMs = 60_000;

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** An OAuth error as RFC 6749 §5.2 names it, with the HTTP status it is sent with. */
export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;
  constructor(error: string, description: string, status = 400) {
    super(description);
    this.error = error;
    this.status = status;
  }
}

/** The client metadata an MCP client sends to register (RFC 7591), with the model it declares. */
export type ClientMetadata = {
  client_name?: unknown;
  redirect_uris?: unknown;
  software_version?: unknown;
  /** microapp's extension: the model the agent runs on, checked against the organization's approved models. */
  model?: unknown;
  [other: string]: unknown;
};

/** A redirect URI an agent may use: a loopback address (native clients, RFC 8252) or https, without a fragment. */
export function acceptableRedirect(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  if (url.hash || url.username || url.password) return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

const text = (v: unknown, max: number, pattern: RegExp): string | null =>
  typeof v === 'string' && v.length > 0 && v.length <= max && pattern.test(v) ? v : null;

/** The parameters of an authorization request, checked (RFC 6749 §4.1.1, RFC 7636, RFC 8707). */
export type AuthorizationRequest = {
  client: AgentClientsTable;
  redirectUri: string;
  state: string | null;
  codeChallenge: string;
  scopes: AgentScope[];
};

/**
 * OAuth 2.1 for agents, with the platform as authorization server and /mcp as the one protected resource:
 * dynamic client registration, the authorization code with PKCE (S256 only), refresh tokens that rotate,
 * and tokens bound to the delegation a person consented to. A refused connection says why.
 */
export function createAgentOAuth(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  /** The organization's policy on agents at connect: the reasons an agent is refused, if any. */
  refuseConnect: (agent: {
    client: string;
    version: string | null;
    model: string | null;
  }) => Promise<string[]>;
  /** The URL of the MCP endpoint: the audience of every access token (RFC 8707's resource). */
  resource: () => string;
}) {
  const { db, clock } = deps;

  async function registerClient(meta: ClientMetadata): Promise<AgentClientsTable> {
    const name = text(meta.client_name, 100, /^[\p{L}\p{N} ._()/:@+-]+$/u);
    if (!name)
      throw new OAuthError(
        'invalid_client_metadata',
        'client_name is required: up to 100 letters, digits, spaces and . _ ( ) / : @ + -',
      );
    const uris = meta.redirect_uris;
    if (!Array.isArray(uris) || uris.length === 0 || uris.length > 5)
      throw new OAuthError('invalid_redirect_uri', 'redirect_uris must list 1 to 5 URIs');
    for (const u of uris)
      if (typeof u !== 'string' || u.length > 500 || !acceptableRedirect(u))
        throw new OAuthError(
          'invalid_redirect_uri',
          `redirect URI ${JSON.stringify(u)} must be https, or http on a loopback address (127.0.0.1, localhost, [::1]), without a fragment`,
        );
    const version =
      meta.software_version === undefined ? null : text(meta.software_version, 50, /^[\w.+-]+$/);
    if (meta.software_version !== undefined && !version)
      throw new OAuthError(
        'invalid_client_metadata',
        'software_version must be up to 50 letters, digits and . _ + -',
      );
    const model = meta.model === undefined ? null : text(meta.model, 100, /^[\w.:/@-]+$/);
    if (meta.model !== undefined && !model)
      throw new OAuthError(
        'invalid_client_metadata',
        'model must be up to 100 letters, digits and . _ : / @ -',
      );
    const refused = await deps.refuseConnect({ client: name, version, model });
    if (refused.length)
      throw new OAuthError('invalid_client_metadata', `this agent is refused: ${refused.join('; ')}`);
    const row: AgentClientsTable = {
      id: newId('agentClient'),
      name,
      version,
      model,
      redirect_uris: JSON.stringify(uris),
      created_at: clock.nowIso(),
    };
    await db.insertInto('agent_clients').values(row).execute();
    return row;
  }

  /**
   * Checks an authorization request. Until the client and its redirect URI are known good, errors are shown,
   * never redirected (an open redirect otherwise); after, they go back to the client as RFC 6749 says.
   */
  async function checkAuthorization(q: Record<string, string | undefined>): Promise<AuthorizationRequest> {
    const client = q.client_id
      ? await db.selectFrom('agent_clients').selectAll().where('id', '=', q.client_id).executeTakeFirst()
      : undefined;
    if (!client)
      throw new AppError('bad_request', 'unknown client_id: the agent must register first (RFC 7591)');
    const registered = JSON.parse(client.redirect_uris) as string[];
    if (!q.redirect_uri || !registered.includes(q.redirect_uri))
      throw new AppError('bad_request', 'redirect_uri is not one the agent registered');
    const redirect = (error: string, description: string) => new OAuthError(error, description, 302);
    if (q.response_type !== 'code') throw redirect('unsupported_response_type', 'response_type must be code');
    if (
      !q.code_challenge ||
      !/^[A-Za-z0-9_-]{43}$/.test(q.code_challenge) ||
      q.code_challenge_method !== 'S256'
    )
      throw redirect(
        'invalid_request',
        'PKCE is required: code_challenge (43 characters) with code_challenge_method S256',
      );
    if (q.resource !== undefined && q.resource !== deps.resource())
      throw redirect('invalid_target', `the only resource here is ${deps.resource()}`);
    const asked = (q.scope ?? '').split(' ').filter(Boolean);
    const unknown = asked.filter((s) => !(agentScopes as readonly string[]).includes(s));
    if (unknown.length)
      throw redirect(
        'invalid_scope',
        `unknown scopes: ${unknown.join(', ')}; agents may have ${agentScopes.join(', ')}`,
      );
    const refused = await deps.refuseConnect({
      client: client.name,
      version: client.version,
      model: client.model,
    });
    if (refused.length) throw redirect('access_denied', `this agent is refused: ${refused.join('; ')}`);
    return {
      client,
      redirectUri: q.redirect_uri,
      state: q.state ?? null,
      codeChallenge: q.code_challenge,
      scopes: (asked.length ? asked : [...agentScopes]) as AgentScope[],
    };
  }

  /** The person's answer on the consent page: a delegation and a one-time code, or the client told no. */
  async function consent(
    principal: Principal,
    req: AuthorizationRequest,
    choice: { allow: boolean; days: number; liveLow: boolean },
    ctx: AuditContext,
  ): Promise<string> {
    const back = new URL(req.redirectUri);
    if (req.state) back.searchParams.set('state', req.state);
    if (!choice.allow) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', `${principal.email} did not allow ${req.client.name}`);
      return back.href;
    }
    if (principal.via.kind !== 'session')
      throw new AppError('forbidden', 'only a person signed in to the console can consent for an agent');
    if (!(delegationDays as readonly number[]).includes(choice.days))
      throw new AppError('bad_request', `a consent lasts ${delegationDays.join(', ')} days`);
    const limits: DelegationLimits = { ...defaultLimits, liveTiers: choice.liveLow ? ['low'] : [] };
    const now = clock.nowIso();
    const id = newId('delegation');
    const code = randomSecret(32);
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('agent_delegations')
        .values({
          id,
          user_id: principal.userId,
          client_id: req.client.id,
          client_name: req.client.name,
          client_version: req.client.version,
          model: req.client.model,
          scopes: JSON.stringify(req.scopes),
          limits: JSON.stringify(limits),
          created_at: now,
          expires_at: new Date(Date.parse(now) + choice.days * 86_400_000).toISOString(),
          revoked_at: null,
          revoked_by: null,
        })
        .execute();
      await trx
        .insertInto('agent_codes')
        .values({
          code_hash: sha256(code),
          delegation_id: id,
          client_id: req.client.id,
          redirect_uri: req.redirectUri,
          code_challenge: req.codeChallenge,
          expires_at: new Date(Date.parse(now) + codeTtlMs).toISOString(),
          used_at: null,
        })
        .execute();
      await deps.audit.record(trx, ctx, {
        action: 'agent.delegated',
        targetType: 'delegation',
        target: id,
        summary: {
          agent: req.client.name,
          version: req.client.version,
          model: req.client.model,
          scopes: req.scopes,
          limits,
          days: choice.days,
        },
      });
    });
    back.searchParams.set('code', code);
    return back.href;
  }

  return { registerClient, checkAuthorization, consent };
}

export type AgentOAuth = ReturnType<typeof createAgentOAuth>;
