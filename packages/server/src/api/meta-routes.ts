import type { FastifyInstance } from 'fastify';
import { type Db, isReachable } from '../db/database.ts';
import { publicRoute } from '../modules/identity/access.ts';
import type { KeyStore } from '../modules/signing/key-store.ts';
import type { ReadinessCheck } from '../server-readiness.ts';

/** Probes, the server's facts and the OpenAPI description: public, and holding no data. */
export function registerMetaRoutes(
  app: FastifyInstance,
  deps: {
    db: Db;
    keys: Pick<KeyStore, 'usable'>;
    dev: boolean;
    issuer: () => string | null;
    appsDomain: () => string | null;
    version: string;
    /** Further checks in order (the blob store, the identity provider); the first problem is the answer. */
    checks: ReadinessCheck[];
  },
) {
  const { db, keys, version } = deps;
  app.get(
    '/healthz',
    { config: { access: publicRoute('liveness probe') }, schema: { hide: true } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    { config: { access: publicRoute('readiness probe') }, schema: { hide: true } },
    async (_req, reply) => {
      if (!(await isReachable(db))) return reply.status(503).send({ status: 'database unreachable' });
      // A KEK that does not open the signing key would fail the first publish: not ready.
      if (!(await keys.usable()))
        return reply.status(503).send({
          status:
            'the key-encryption key (MICROAPP_KEK) does not open the signing key in the database: it is not the key this data was written with',
        });
      for (const check of deps.checks) {
        const problem = await check();
        if (problem) return reply.status(503).send({ status: problem });
      }
      return reply.status(200).send({ status: 'ready' });
    },
  );
  app.get(
    '/api/v1/meta',
    {
      config: { access: publicRoute('tells clients what kind of server this is') },
      schema: { tags: ['meta'] },
    },
    async () => ({
      name: 'microapp',
      version,
      dev: deps.dev,
      database: db.dialect,
      issuer: deps.issuer(),
      // Apps answer at NAME.appsDomain (previews at NAME--preview.appsDomain).
      appsDomain: deps.appsDomain(),
    }),
  );
  app.get(
    '/api/openapi.json',
    { config: { access: publicRoute('the API description holds no data') }, schema: { hide: true } },
    async () => app.swagger(),
  );
}
