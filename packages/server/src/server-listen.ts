import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { readTls, reloadTlsOnChange } from './api/tls.ts';
import { ConfigError, devGroupRoles, type OidcSettings, type ServerConfig } from './config.ts';
import type { DevIdp } from './modules/identity/dev-idp.ts';
import type { ClusterEgress } from './modules/runtime/kubernetes-egress.ts';
import { issuerProblem } from './server-readiness.ts';

/**
 * Checks the identity provider before anything starts: one that calls itself by another issuer than
 * MICROAPP_OIDC_ISSUER stops the start (every sign-in would fail); one that does not answer yet is logged, and
 * `/readyz` waits for it.
 */
export async function checkIssuer(config: Pick<ServerConfig, 'oidc'>, logger: Logger): Promise<void> {
  if (!config.oidc) return;
  const found = await issuerProblem(config.oidc.issuer);
  if (found?.misnamed) throw new ConfigError([found.problem]);
  if (found) logger.error(found.problem);
}

/**
 * Starts listening, and works out the public URL; in dev mode starts the
 * embedded IdP.
 */
export async function listen(
  app: FastifyInstance,
  config: ServerConfig,
  publicUrl: string | null,
): Promise<{ publicUrl: string; devIdp: DevIdp | null; devOidc: OidcSettings | null }> {
  let stopReloading = () => {};
  if (config.tls) app.addHook('onClose', async () => stopReloading());
  await app.listen({ port: config.port, host: config.host });
  if (config.tls)
    stopReloading = reloadTlsOnChange(app.server as unknown as HttpsServer, config.tls, app.log as Logger);
  const { port } = app.server.address() as AddressInfo;
  const host =
    config.host === '0.0.0.0' || config.host === '::'
      ? 'localhost'
      : config.host.includes(':')
        ? `[${config.host}]`
        : config.host;
  // On loopback the public name is localhost: what the README, the CLI default and browsers use.
  const publicHost = host === '127.0.0.1' || host === '[::1]' ? 'localhost' : host;
  const url = publicUrl ?? `${config.tls ? 'https' : 'http'}://${publicHost}:${port}`;
  if (!config.dev) return { publicUrl: url, devIdp: null, devOidc: null };
  // Loaded only in dev mode, so a production server never carries the password-less IdP; in a thread of
  // its own (dev-idp-thread.ts).
  const { startDevIdpThread } = await import('./modules/identity/dev-idp-thread.ts');
  const devIdp = await startDevIdpThread({
    port: config.devIdpPort,
    host: '127.0.0.1',
    redirectUri: `${url}/auth/callback`,
  });
  return {
    publicUrl: url,
    devIdp,
    devOidc: {
      issuer: devIdp.issuer,
      clientId: devIdp.clientId,
      clientSecret: devIdp.clientSecret,
      groupsClaim: 'groups',
      departmentClaim: 'department',
      managerClaim: 'manager',
      groupRoles: devGroupRoles,
    },
  };
}

/**
 * Serves the egress broker to the cluster's pods (MICROAPP_EGRESS_LISTEN), over TLS with the broker's
 * certificate (or the platform's), renewed as the main port's is. Null when this server does not serve it.
 */
export async function listenEgress(
  egress: ClusterEgress | null,
  config: Pick<ServerConfig, 'kubernetes' | 'egressTls'>,
  logger: Logger,
): Promise<{ port: number } | null> {
  const at = config.kubernetes.brokerListen;
  if (!egress || !at || !config.egressTls) return null;
  const { server, port } = await egress.listen(at, readTls(config.egressTls));
  const stop = reloadTlsOnChange(server, config.egressTls, logger);
  server.once('close', stop);
  logger.info({ host: at.host, port }, "the egress broker takes the cluster's pods' calls");
  return { port };
}
