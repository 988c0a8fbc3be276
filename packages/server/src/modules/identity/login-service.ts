import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import * as oidc from 'openid-client';
import type { Clock } from '../../clock.ts';
import type { ReadCache } from '../../db/read-cache.ts';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { newId, nowIso, randomSecret } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { OidcSettings } from './oidc-settings.ts';
import { sessionPrincipal as sessionPrincipalOf } from './sessions.ts';
import { grantsFor, toUser, type User } from './users.ts';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const minutesFromNow = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

/** Only loopback http redirects are accepted for CLI logins, so a link cannot send a code elsewhere. */
export function isLoopbackRedirect(value: string): boolean {
  try {
    const url = new URL(value);
    return (
      url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && !url.username
    );
  } catch {
    return false;
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const controlOrBackslash = /[\u0000-\u001f\u007f-\u009f\\]/;

/**
 * A same-origin path to return to after login; anything else becomes "/". The value is parsed as a URL
 * against a stand-in origin, as a browser would resolve it, and kept only when the origin is unchanged:
 * browsers strip tabs and newlines (`/%09/evil.example` becomes `//evil.example`), so any control
 * character refuses the value outright instead of being second-guessed.
 */
export function safeReturnTo(value: string | undefined): string {
  if (!value?.startsWith('/')) return '/';
  let decoded = value;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    return '/';
  }
  // C0 controls, DEL and C1 controls, raw or percent-encoded; a backslash is a slash to browsers.
  if (controlOrBackslash.test(value) || controlOrBackslash.test(decoded)) return '/';
  const base = 'https://return-to.invalid';
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return '/';
  }
  if (url.origin !== base || value.startsWith('//')) return '/';
  return `${url.pathname}${url.search}${url.hash}`;
}

export type CliLogin = { redirect: string; challenge: string; state: string };

/**
 * Browser sign-in through OIDC (authorization code + PKCE), server-side sessions, and the one-time
 * codes a CLI exchanges for an API token after signing in through the browser.
 */
export function createLoginService(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  oidc: () => OidcSettings;
  redirectUri: () => string;
  sessionTtlHours: number;
  /** The platform clock, for when someone last signed in (activity, not a credential: sessions keep the wall clock). */
  clock?: Clock;
}) {
  const { db, audit } = deps;
  let discovered: { issuer: string; config: oidc.Configuration } | null = null;

  async function configuration(): Promise<oidc.Configuration> {
    const settings = deps.oidc();
    if (discovered?.issuer === settings.issuer) return discovered.config;
    const url = new URL(settings.issuer);
    const insecure = url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    try {
      const config = await oidc.discovery(url, settings.clientId, settings.clientSecret, undefined, {
        execute: insecure ? [oidc.allowInsecureRequests] : [],
      });
      discovered = { issuer: settings.issuer, config };
      return config;
    } catch (error) {
      throw new AppError(
        'unavailable',
        `the identity provider at ${settings.issuer} cannot be reached: ${(error as Error).message}`,
      );
    }
  }

  /** Starts a sign-in; returns where to send the browser and the state to bind to it in a cookie. */
  async function begin(returnTo: string, cli: CliLogin | null): Promise<{ url: string; state: string }> {
    if (cli && !isLoopbackRedirect(cli.redirect))
      throw new AppError(
        'bad_request',
        'cli_redirect must be an http://127.0.0.1 or http://localhost address',
      );
    const config = await configuration();
    const state = randomSecret();
    const nonce = randomSecret();
    const verifier = oidc.randomPKCECodeVerifier();
    await db
      .insertInto('login_requests')
      .values({
        state,
        code_verifier: verifier,
        nonce,
        return_to: safeReturnTo(returnTo),
        cli_redirect: cli?.redirect ?? null,
        cli_challenge: cli?.challenge ?? null,
        cli_state: cli?.state ?? null,
        created_at: nowIso(),
        expires_at: minutesFromNow(10),
      })
      .execute();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: deps.redirectUri(),
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state };
  }

  /** Completes a sign-in from the IdP's redirect; upserts the user and audits the login. */
  async function complete(search: string, cookieState: string | undefined, ctx: Omit<AuditContext, 'actor'>) {
    // The redirect URI sent at the start, with the IdP's answer: the token request must repeat it exactly.
    const callbackUrl = new URL(deps.redirectUri());
    callbackUrl.search = search;
    const state = callbackUrl.searchParams.get('state');
    if (!state || !cookieState || state !== cookieState)
      throw new AppError(
        'bad_request',
        'this sign-in was not started in this browser; start again from the login page',
      );
    const request = await db
      .deleteFrom('login_requests')
      .where('state', '=', state)
      .returningAll()
      .executeTakeFirst();
    if (!request || request.expires_at < nowIso())
      throw new AppError('bad_request', 'this sign-in has expired; start again from the login page');
    const error = callbackUrl.searchParams.get('error');
    if (error) throw new AppError('forbidden', `the identity provider refused the sign-in: ${error}`);
    const config = await configuration();
    let claims: Record<string, unknown>;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: request.code_verifier,
        expectedState: state,
        expectedNonce: request.nonce,
      });
      claims = { ...(tokens.claims() ?? {}) };
      const settings = deps.oidc();
      if (!(settings.groupsClaim in claims) && tokens.access_token) {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, String(claims.sub));
        claims = { ...info, ...claims };
      }
    } catch (err) {
      const e = err as Error & { error?: string; error_description?: string };
      const why = e.error ? `${e.error}${e.error_description ? `: ${e.error_description}` : ''}` : e.message;
      throw new AppError('unauthenticated', `sign-in failed at the identity provider: ${why}`);
    }
    const user = await upsertUser(claims, ctx);
    return { user, request };
  }

  async function upsertUser(
    claims: Record<string, unknown>,
    ctx: Omit<AuditContext, 'actor'>,
  ): Promise<User> {
    const settings = deps.oidc();
    const subject = String(claims.sub ?? '');
    const email = typeof claims.email === 'string' ? claims.email.toLowerCase() : '';
    if (!subject || !email)
      throw new AppError('unauthenticated', 'the identity provider did not return a subject and e-mail');
    const rawGroups = claims[settings.groupsClaim];
    const groups = Array.isArray(rawGroups)
      ? rawGroups.map(String)
      : typeof rawGroups === 'string'
        ? [rawGroups]
        : [];
    const grants = grantsFor(groups, settings.groupRoles);
    const department =
      typeof claims[settings.departmentClaim] === 'string' ? String(claims[settings.departmentClaim]) : null;
    const name = typeof claims.name === 'string' ? claims.name : email;
    const rawManager = claims[settings.managerClaim];
    const manager =
      typeof rawManager === 'string' && /^[^@\s]+@[^@\s]+$/.test(rawManager)
        ? rawManager.toLowerCase()
        : null;
    const now = nowIso();
    return db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('users')
        .selectAll()
        .where('subject', '=', subject)
        .executeTakeFirst();
      const values = {
        email,
        name,
        department,
        manager,
        roles: JSON.stringify(grants.roles),
        specialties: JSON.stringify(grants.specialties),
        last_login_at: deps.clock?.nowIso() ?? now,
      };
      if (existing?.disabled_at)
        throw new AppError(
          'forbidden',
          'this account was disabled by a platform admin; ask them if you think it should not be',
        );
      let id: string;
      if (existing) {
        id = existing.id;
        await trx.updateTable('users').set(values).where('id', '=', id).execute();
      } else {
        id = newId('user');
        await trx
          .insertInto('users')
          .values({ id, subject, created_at: now, ...values })
          .execute();
      }
      const changed = existing && (existing.roles !== values.roles || existing.department !== department);
      await audit.record(
        trx,
        { ...ctx, actor: email },
        {
          action: 'auth.login',
          targetType: 'user',
          target: email,
          summary: {
            roles: grants.roles,
            specialties: grants.specialties,
            department,
            firstLogin: !existing,
            ...(changed ? { rolesChanged: true } : {}),
          },
        },
      );
      const row = await trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      return toUser(row);
    });
  }

  /**
   * A new server-side session; the cookie holds a random value, the database only its hash. With `app`,
   * the session is valid at that app's gateway only.
   */
  async function createSession(
    userId: string,
    app: string | null = null,
  ): Promise<{ cookie: string; expiresAt: string }> {
    const cookie = randomSecret();
    const expiresAt = new Date(Date.now() + deps.sessionTtlHours * 3600_000).toISOString();
    await db
      .insertInto('sessions')
      .values({
        id_hash: sha256(cookie),
        user_id: userId,
        csrf_token: randomSecret(),
        created_at: nowIso(),
        expires_at: expiresAt,
        revoked_at: null,
        app,
      })
      .execute();
    return { cookie, expiresAt };
  }

  /** The principal behind a session cookie (sessions.ts). */
  const sessionPrincipal = (cookie: string, app: string | null = null, cache?: ReadCache) =>
    sessionPrincipalOf(db, cookie, app, cache);

  /** Signs out of the platform, and of every app the user signed in to through it. */
  async function endSession(cookie: string, ctx: AuditContext): Promise<void> {
    await db.transaction().execute(async (trx) => {
      const ended = await trx
        .updateTable('sessions')
        .set({ revoked_at: nowIso() })
        .where('id_hash', '=', sha256(cookie))
        .where('revoked_at', 'is', null)
        .returning('user_id')
        .executeTakeFirst();
      if (!ended) return;
      const apps = await trx
        .updateTable('sessions')
        .set({ revoked_at: nowIso() })
        .where('user_id', '=', ended.user_id)
        .where('app', 'is not', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      await audit.record(trx, ctx, {
        action: 'auth.logout',
        targetType: 'user',
        target: ctx.actor,
        summary: { appSessionsEnded: Number(apps.numUpdatedRows) },
      });
    });
  }

  /** A one-time code for the CLI, bound to the CLI's PKCE challenge, valid for two minutes. */
  async function issueCliCode(userId: string, challenge: string): Promise<string> {
    const code = randomSecret();
    await db
      .insertInto('cli_codes')
      .values({
        code_hash: sha256(code),
        user_id: userId,
        challenge,
        created_at: nowIso(),
        expires_at: minutesFromNow(2),
        used_at: null,
      })
      .execute();
    return code;
  }

  /** Redeems a CLI code once; the verifier must match the challenge the CLI sent at the start. */
  async function redeemCliCode(code: string, verifier: string): Promise<string> {
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const used = await db
      .updateTable('cli_codes')
      .set({ used_at: nowIso() })
      .where('code_hash', '=', sha256(code))
      .where('used_at', 'is', null)
      .where('expires_at', '>', nowIso())
      .where('challenge', '=', challenge)
      .returning('user_id')
      .executeTakeFirst();
    if (!used)
      throw new AppError(
        'unauthenticated',
        'the login code is unknown, used, expired or does not match; run `microapp login` again',
      );
    return used.user_id;
  }

  /**
   * A one-time code that signs a user in to one app's host, valid for one minute, bound to the `state`
   * the app host put in the browser's cookie (so nobody can plant their own sign-in in a victim's browser).
   */
  async function issueAppCode(userId: string, app: string, state: string): Promise<string> {
    const code = randomSecret();
    await db
      .insertInto('app_codes')
      .values({
        code_hash: sha256(code),
        user_id: userId,
        app,
        state,
        created_at: nowIso(),
        expires_at: minutesFromNow(1),
        used_at: null,
      })
      .execute();
    return code;
  }

  /** Redeems an app code once, for the app and browser it was issued to; returns an app session. */
  async function redeemAppCode(code: string, app: string, state: string) {
    const used = await db
      .updateTable('app_codes')
      .set({ used_at: nowIso() })
      .where('code_hash', '=', sha256(code))
      .where('used_at', 'is', null)
      .where('expires_at', '>', nowIso())
      .where('app', '=', app)
      .where('state', '=', state)
      .returning('user_id')
      .executeTakeFirst();
    if (!used)
      throw new AppError(
        'bad_request',
        `this sign-in link is used, expired or was not started in this browser; open ${app} again`,
      );
    return createSession(used.user_id, app);
  }

  return {
    begin,
    complete,
    createSession,
    sessionPrincipal,
    endSession,
    issueCliCode,
    redeemCliCode,
    issueAppCode,
    redeemAppCode,
  };
}

export type LoginService = ReturnType<typeof createLoginService>;
