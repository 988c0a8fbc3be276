import { lookup } from 'node:dns/promises';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { ResolvedConnector } from '../connectors/connector-service.ts';
import { isPublicAddress, normalizeHost } from './addresses.ts';
import { createDlpCheck, type DlpInput, type DlpVerdict } from './egress-dlp.ts';
import { type BrokeredApp, type EgressDecision, maxBody, type Refusal } from './egress-types.ts';
import { checkModelCall, type ModelCall } from './model-calls.ts';

/** What the broker's rules need from the platform. */
export type EgressRuleDeps = {
  policy: (input: unknown, app: string) => Promise<{ message: string }[]>;
  /** Name resolution; tests and `--dev` may pin names (MICROAPP_DEV_EGRESS_HOSTS), which skips the address rule. */
  resolve?: (host: string) => Promise<string[]>;
  pinned?: Map<string, { address: string; port: number }>;
  dlp?: (input: DlpInput, app: string) => Promise<DlpVerdict>;
  connectors?: { resolve(id: string): Promise<ResolvedConnector | null> };
  /**
   * The registry platform builds install from (MICROAPP_NPM_REGISTRY): a build, and only a build, may reach
   * it on a private address and on its own port. Apps never may.
   */
  buildRegistry?: { host: string; port: number };
  /** The `microapp.models` pack: why a call to a model API is refused (its model, the app's data). */
  refuseModel?: (input: { model: string | null; dataClasses: string[]; app: string }) => Promise<string[]>;
  /** The app's own secrets, which a call to a model API must not carry (kept by the broker while it runs). */
  secretsOf?: (app: BrokeredApp) => Record<string, string> | undefined;
};

/**
 * The broker's rules, before any connection: the host must be named (never an address), approved for the
 * app (or a connector it uses, within the connector's methods and paths), allowed by the policy packs,
 * and resolve to public addresses only; what the request carries passes DLP.
 */
export function createEgressRules(deps: EgressRuleDeps) {
  const resolve =
    deps.resolve ?? (async (host: string) => (await lookup(host, { all: true })).map((a) => a.address));

  /** Whether a host and port are the build registry's. */
  const isRegistry = (host: string, port: number) =>
    deps.buildRegistry !== undefined && host === deps.buildRegistry.host && port === deps.buildRegistry.port;

  /** Everything but the connection: which host, whether it may be reached, and at which address. */
  async function decide(
    app: BrokeredApp,
    req: IncomingMessage,
    body: Buffer,
    options: { build?: boolean } = {},
  ): Promise<EgressDecision> {
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
    let modelCall: ModelCall | undefined;
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
      if (c.modelApi) {
        const checked = await checkModelCall(deps, app, c.modelApi, asked, method, body);
        if ('allowed' in checked) return checked;
        modelCall = checked.call;
      }
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
      ...(modelCall ? { model: modelCall } : {}),
      ...dlp,
    };
    const reached = await addressOf(host, asked, Boolean(options.build && isRegistry(asked, finalPort)));
    if ('allowed' in reached) return reached;
    return { allowed: true, ...base, ...reached, port: reached.port ?? finalPort };
  }

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
    /** The company registry a build installs from, which may be on a private address (and only it). */
    privateAllowed = false,
  ): Promise<Refusal | { address: string; port?: number }> {
    const pinned = deps.pinned?.get(host);
    if (pinned) return { address: pinned.address, port: pinned.port };
    let addresses: string[];
    try {
      addresses = await resolve(host);
    } catch {
      return { allowed: false, status: 502, host: asked, reason: `${host} could not be resolved` };
    }
    const inside = privateAllowed ? [] : addresses.filter((a) => !isPublicAddress(a));
    if (addresses.length === 0 || inside.length)
      return {
        allowed: false,
        status: 403,
        host: asked,
        reason: `${host} resolves to an address apps may not reach (${inside.join(', ') || 'none'})`,
      };
    return { address: addresses[0]! };
  }

  return { decide, addressRefusal, unapproved, policyRefusal, addressOf, isRegistry };
}

export type EgressRules = ReturnType<typeof createEgressRules>;
