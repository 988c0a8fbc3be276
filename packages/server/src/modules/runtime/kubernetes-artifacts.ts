import { readFile } from 'node:fs/promises';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError, notFound } from '../../errors.ts';
import type { BlobStore } from '../blobs/blob-store.ts';
import { publicRoute } from '../identity/access.ts';
import { parseSite } from './deployment-types.ts';
import {
  artifactTokenAudience,
  artifactTokenSeconds,
  type KubernetesSettings,
} from './kubernetes-settings.ts';

/** The longest-lived token taken: Kubernetes may round a projected token's life up, never to a year. */
const longestTokenSeconds = 3600;

/**
 * Whose pod is calling: the app (site) of the service account its token names, in the apps' namespace,
 * and when the token ends (ms since the epoch).
 */
export type PodCaller = { site: string; pod: string | null; expiresAt: number };

/**
 * Checks a pod's projected service-account token: signed by the cluster's service-account issuer (its
 * JWKS, a file read afresh each time so a key rotation needs no restart, or its https URL), for one
 * audience (`microapp-artifacts` for the init container's artifact, `microapp-egress` for the egress
 * sidecar's calls: a token taken from one cannot be used for the other), short-lived, and naming a service
 * account in the apps' namespace. The account's name is the app's site (`recon`, `recon--preview`), as the
 * Kubernetes driver renders it.
 */
export function createPodTokenVerifier(
  settings: Pick<KubernetesSettings, 'namespace' | 'tokenIssuer' | 'tokenJwks'>,
  use: { audience: string; what: string } = { audience: artifactTokenAudience, what: 'fetch artifacts' },
) {
  const { audience } = use;
  const { tokenIssuer, tokenJwks } = settings;
  const remote = tokenJwks?.startsWith('https://') ? createRemoteJWKSet(new URL(tokenJwks)) : null;
  async function keys(): Promise<JWTVerifyGetKey> {
    if (remote) return remote;
    const text = await readFile(tokenJwks!, 'utf8');
    return createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
  }
  const refused = (detail: string) => new AppError('unauthenticated', detail);

  return async function verify(authorization: string | undefined): Promise<PodCaller> {
    if (!tokenIssuer || !tokenJwks)
      throw new AppError(
        'conflict',
        "this platform does not take pods' service-account tokens: an admin sets MICROAPP_KUBERNETES_TOKEN_ISSUER and MICROAPP_KUBERNETES_TOKEN_JWKS (see docs/runtime.md)",
      );
    const token = /^Bearer ([A-Za-z0-9._~+/=-]{20,8192})$/.exec(authorization ?? '')?.[1];
    if (!token) throw refused("present the pod's service-account token as Bearer");
    let claims: JWTPayload;
    try {
      claims = (
        await jwtVerify(token, await keys(), {
          issuer: tokenIssuer,
          audience,
          algorithms: ['RS256', 'ES256', 'PS256'],
          requiredClaims: ['exp', 'iat', 'sub'],
        })
      ).payload;
    } catch (error) {
      throw refused(
        `the service-account token is not one this platform takes (${(error as Error).message}): it must be a projected token for the audience ${audience} from ${tokenIssuer}`,
      );
    }
    if (claims.exp! - claims.iat! > longestTokenSeconds)
      throw refused(
        `the service-account token lives ${claims.exp! - claims.iat!} s: only short-lived projected tokens are taken (the Kubernetes driver asks for ${artifactTokenSeconds} s)`,
      );
    const account = /^system:serviceaccount:([a-z0-9-]{1,63}):([a-z0-9-]{1,253})$/.exec(claims.sub ?? '');
    if (!account || account[1] !== settings.namespace)
      throw new AppError(
        'forbidden',
        `only the apps' service accounts in the namespace ${settings.namespace} ${use.what}, not ${String(claims.sub).slice(0, 120)}`,
      );
    const k8s = claims['kubernetes.io'] as { pod?: { name?: string } } | undefined;
    return { site: account[2]!, pod: k8s?.pod?.name ?? null, expiresAt: claims.exp! * 1000 };
  };
}

/**
 * `GET /api/v1/kubernetes/artifacts/{digest}`: an app's pod fetches its signed artifact with its own
 * short-lived service-account token. A pod gets only an artifact of its own app, and only while the app is
 * approved and not held (a stopped or decommissioned app's pods cannot start again); the bytes are checked against the digest.
 */
export function registerKubernetesArtifactRoutes(
  fastify: FastifyInstance,
  deps: {
    db: Kysely<Database>;
    blobs: BlobStore;
    settings: KubernetesSettings;
    /** Why an app may not run now (stopped for inactivity, decommissioned), as a deploy asks. */
    hold: (appId: string) => Promise<{ message: string } | null>;
  },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const verify = createPodTokenVerifier(deps.settings);
  app.get(
    '/api/v1/kubernetes/artifacts/:digest',
    {
      config: {
        access: publicRoute('a pod of an app presents its own service-account token, checked here'),
      },
      schema: {
        tags: ['runtime'],
        summary:
          "An app's signed artifact for its pod's init container (Kubernetes driver): the pod's own short-lived service-account token, never a person's",
        params: Type.Object({ digest: Type.String({ pattern: '^sha256:[a-f0-9]{64}$' }) }),
      },
    },
    async (request, reply) => {
      const caller = await verify(request.headers.authorization);
      const { name } = parseSite(caller.site);
      const { digest } = request.params;
      const row = await deps.db
        .selectFrom('app_versions')
        .innerJoin('apps', 'apps.id', 'app_versions.app_id')
        .select(['apps.id', 'apps.state', 'app_versions.version'])
        .where('apps.name', '=', name)
        .where('app_versions.digest', '=', digest)
        .executeTakeFirst();
      if (!row) throw notFound(`a version of ${name} with the digest ${digest}`);
      if (row.state !== 'approved')
        throw new AppError(
          'conflict',
          `${name} is ${row.state.replace('_', ' ')}: its pods get no artifact until it is approved again`,
        );
      const held = await deps.hold(row.id);
      if (held) throw new AppError('conflict', `its pods get no artifact: ${held.message}`);
      request.log.info({ app: name, version: row.version, pod: caller.pod }, 'a pod fetched its artifact');
      return reply.type('application/gzip').send(await deps.blobs.get('artifact', digest));
    },
  );
}
