import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/schema.ts';
import type { Env, Instance } from './deployment-types.ts';

/** An app that runs on the cluster, as the gateway forwards to it: its Service's address and version. */
export type ClusterInstance = {
  version: string;
  inflight: number;
  lastRequestAt: number;
  cluster: { host: string; port: number };
};

/** What the gateway forwards a request to: a local instance's socket, or an app's Service on the cluster. */
export type Upstream = Instance | ClusterInstance;

/** The connection options of an upstream, for `http.request`. */
export const upstreamTarget = (u: Upstream): { socketPath: string } | { host: string; port: number } =>
  'cluster' in u ? u.cluster : { socketPath: u.process.socketPath };

/**
 * Where the gateway finds apps the Kubernetes driver runs: the version last rendered for an app's
 * environment (written with its audit event), and its Service's address from MICROAPP_KUBERNETES_SERVICE_URL
 * (`http://{site}.{namespace}.svc.cluster.local`). The gateway asks only when no local instance runs the
 * app; sign-in, access policy, holds and the signed identity are the same as for a local app.
 */
export function createClusterRoutes(deps: {
  db: Kysely<Database>;
  namespace: string;
  /** The Service address template, or null: the gateway then never forwards to the cluster. */
  serviceUrl: string | null;
}) {
  const { serviceUrl } = deps;

  async function record(
    trx: Transaction<Database>,
    route: { appId: string; env: Env; version: string; digest: string; by: string; at: string },
  ): Promise<void> {
    const row = {
      version: route.version,
      digest: route.digest,
      namespace: deps.namespace,
      rendered_by: route.by,
      rendered_at: route.at,
    };
    await trx
      .insertInto('cluster_routes')
      .values({ app_id: route.appId, env: route.env, ...row })
      .onConflict((oc) => oc.columns(['app_id', 'env']).doUpdateSet(row))
      .execute();
  }

  /** The app's environment on the cluster, when the gateway forwards there and the driver rendered it. */
  async function find(appId: string, site: string, env: Env): Promise<ClusterInstance | null> {
    if (!serviceUrl) return null;
    const row = await deps.db
      .selectFrom('cluster_routes')
      .select(['version', 'namespace'])
      .where('app_id', '=', appId)
      .where('env', '=', env)
      .executeTakeFirst();
    if (!row) return null;
    const url = new URL(serviceUrl.replaceAll('{site}', site).replaceAll('{namespace}', row.namespace));
    return {
      version: row.version,
      inflight: 0,
      lastRequestAt: Date.now(),
      cluster: { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80) },
    };
  }

  return { record, find };
}

export type ClusterRoutes = ReturnType<typeof createClusterRoutes>;
