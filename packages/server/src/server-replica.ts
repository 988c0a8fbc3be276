import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { ServerConfig } from './config.ts';
import type { TlsFiles } from './config-scale.ts';
import type { Database } from './db/schema.ts';
import type { BuildService } from './modules/builds/build-service.ts';
import type { DatabaseCredentials } from './modules/connectors/database-credentials.ts';
import { type ReplicaLease, startReplicaLease } from './modules/replicas/replica-lease.ts';
import type { DeploymentService } from './modules/runtime/deployment-service.ts';
import { openUsageWal } from './modules/usage/usage-wal.ts';

/** This replica's usage log, in a folder of its own: another replica sharing the data folder never replays it. */
export function usageWal(config: Pick<ServerConfig, 'replica' | 'dataDir'>) {
  const folder = createHash('sha256').update(config.replica.id).digest('hex').slice(0, 16);
  return openUsageWal(join(config.dataDir, 'usage-wal', folder));
}

/**
 * Says where the other replicas reach this one, to forward requests for the apps it runs: MICROAPP_REPLICA_URL,
 * or the address it listens on (the host name when it listens on every interface).
 */
export function advertiseReplica(
  lease: Pick<ReplicaLease, 'advertise'>,
  config: Pick<ServerConfig, 'replica' | 'host' | 'tls'>,
  port: number,
) {
  const host = config.host === '0.0.0.0' || config.host === '::' ? hostname() : config.host;
  // A replica that serves TLS itself is reached over TLS by the others too.
  const scheme = config.tls ? 'https' : 'http';
  return lease.advertise(
    config.replica.url ?? `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`,
  );
}

/** Registers this server as a replica (see docs/operations.md, "Several replicas"). */
export function joinReplicas(
  config: Pick<ServerConfig, 'replica'>,
  db: Kysely<Database>,
  version: string,
  logger: Logger,
) {
  return startReplicaLease({
    db,
    id: config.replica.id,
    version,
    leaseMs: config.replica.leaseSeconds * 1000,
    onError: (error) => logger.warn({ err: error }, 'could not renew this replica lease; retrying'),
  });
}

/**
 * Picks up work at start: database roles left by instances of a server that stopped without dropping them,
 * this replica's apps that were running (each verified again, each with new roles) and builds its restart
 * interrupted. Then, every lease period, what a replica whose lease ran out left: its apps start here, its
 * builds are failed (their requesters start them again).
 */
export async function recoverWork(deps: {
  lease: ReplicaLease;
  leaseSeconds: number;
  logger: Logger;
  credentials: Pick<DatabaseCredentials, 'revokeOrphans'>;
  deployments: Pick<DeploymentService, 'recover'>;
  builds: Pick<BuildService, 'recover'>;
}): Promise<{ stop(): Promise<void> }> {
  const { logger, credentials, deployments, builds } = deps;
  const orphans = await credentials.revokeOrphans();
  if (orphans) logger.info({ revoked: orphans }, 'dropped database roles of instances that no longer run');
  const recovery = await deployments.recover();
  const interrupted = await builds.recover('mine-and-dead');
  if (interrupted)
    logger.warn({ builds: interrupted }, 'builds interrupted by the last restart were marked failed');
  if (recovery.recovered.length || recovery.failed.length) logger.info(recovery, 'recovered running apps');
  let sweeping: Promise<void> = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    // One sweep at a time: starting apps can take longer than a lease period, and a stop must wait for it.
    if (busy) return;
    busy = true;
    sweeping = (async () => {
      const failed = await builds.recover('dead');
      if (failed) logger.warn({ builds: failed }, 'failed the builds of a replica whose lease ran out');
      const taken = await deployments.recover('dead');
      if (taken.recovered.length || taken.failed.length)
        logger.info(taken, 'took over the apps of a replica whose lease ran out');
    })()
      .catch((error) => logger.warn({ err: error }, 'could not take over the work of a stopped replica'))
      .finally(() => {
        busy = false;
      });
  }, deps.leaseSeconds * 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await sweeping;
    },
  };
}

/**
 * What one replica needs to reach another over TLS: its own certificate (the one they share), read from its
 * file each time it may have been renewed, and the company CA the process trusts (NODE_EXTRA_CA_CERTS).
 */
export function replicaTls(files: TlsFiles) {
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  return {
    certificate: () => readFileSync(files.certFile, 'utf8'),
    companyCa: extra && existsSync(extra) ? readFileSync(extra, 'utf8') : null,
  };
}
