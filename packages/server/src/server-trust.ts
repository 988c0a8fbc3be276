import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Clock } from './clock.ts';
import type { ServerConfig } from './config.ts';
import type { ReadCache } from './db/read-cache.ts';
import type { Database } from './db/schema.ts';
import { registerAdvisoryRoutes } from './modules/advisories/advisory-routes.ts';
import { createAdvisoryService } from './modules/advisories/advisory-service.ts';
import { createAgentSessionRecord } from './modules/agents/agent-session.ts';
import { checkpointKey, createAuditCheckpoints } from './modules/audit/audit-checkpoints.ts';
import { registerAuditRoutes } from './modules/audit/audit-routes.ts';
import type { AuditService } from './modules/audit/audit-service.ts';
import { createFolderBlobStore } from './modules/blobs/blob-store.ts';
import { createOciBlobStore } from './modules/blobs/oci-blob-store.ts';
import type { CatalogService } from './modules/catalog/catalog-service.ts';
import { kekOf } from './modules/secrets/envelope.ts';
import { registerSecretRoutes } from './modules/secrets/secret-routes.ts';
import { createSecretService } from './modules/secrets/secret-service.ts';
import { createVaultClient } from './modules/secrets/vault.ts';
import { createKeyRotation } from './modules/signing/key-rotation.ts';
import { createKeyStore, loadKek } from './modules/signing/key-store.ts';
import { registerSigningRoutes } from './modules/signing/signing-routes.ts';
import { createVersionsService } from './modules/signing/versions-service.ts';

/**
 * A response waits until the audit events its request recorded are in the chain (audit-service.ts): the
 * change committed with its event; whoever made it reads it in the trail at once. A platform write also
 * makes the gateway's read cache forget at once (another replica's reach it by notification).
 */
export function answerAfterChain(
  app: FastifyInstance,
  deps: {
    audit: Pick<AuditService, 'mustChainBefore' | 'chainFor'>;
    readCache: Pick<ReadCache, 'forget'>;
    isAppHost: (host: string | undefined) => boolean;
  },
) {
  app.addHook('onSend', async (request) => {
    if (deps.audit.mustChainBefore(request.id)) await deps.audit.chainFor(request.id);
    if (request.method !== 'GET' && request.method !== 'HEAD' && !deps.isAppHost(request.headers.host))
      deps.readCache.forget();
  });
}

/**
 * The part of the composition root that holds keys and proofs: the KEK and the signing keys, audit
 * checkpoints, advisories, secrets and signed versions, with their routes.
 */
export function composeTrust(
  app: FastifyInstance,
  deps: {
    config: ServerConfig;
    db: Kysely<Database>;
    clock: Clock;
    audit: AuditService;
    catalog: CatalogService;
    /** Called when an advisory snapshot was imported. */
    afterImport: () => void;
    publicUrl: () => string;
  },
) {
  const { config, db, clock, audit, catalog } = deps;
  // Artifacts and archives: in the data folder on one machine, in an OCI registry shared by replicas.
  const blobs = config.blobRegistry
    ? createOciBlobStore(config.blobRegistry)
    : createFolderBlobStore(config.dataDir);
  const advisories = createAdvisoryService({
    db: db,
    audit,
    catalog,
    clock,
    afterImport: deps.afterImport,
  });
  registerAdvisoryRoutes(app, { advisories });
  const kek = loadKek({ env: process.env, devFile: config.dev ? join(config.dataDir, 'kek') : null });
  const keys = createKeyStore({ db: db, kek });
  // Checkpoints are signed with a key derived from the KEK, so the database alone cannot forge one.
  const checkpoints = createAuditCheckpoints({
    db: db,
    clock,
    key: checkpointKey(kek),
    file: join(config.dataDir, 'audit', 'checkpoints.jsonl'),
    sequence: audit.sequence,
  });
  registerAuditRoutes(app, { db: db, audit, checkpoints });
  const previousKeks = (process.env.MICROAPP_KEK_PREVIOUS ?? '')
    .split(',')
    .filter(Boolean)
    .map((k) => kekOf(Buffer.from(k.trim(), 'base64')));
  const vault = config.vault ? createVaultClient(config.vault) : null;
  const secrets = createSecretService({
    db: db,
    audit,
    catalog,
    current: kekOf(kek),
    previous: previousKeks,
    vault: config.vault?.secretsBackend === 'vault' ? vault : null,
  });
  registerSecretRoutes(app, { secrets });
  const versions = createVersionsService({
    db: db,
    audit,
    catalog,
    advisories,
    keys,
    blobs,
    builderId: (by) => `${deps.publicUrl()}/builders/${by}/v1`,
    agentSession: createAgentSessionRecord(db),
    shipOnlyMergedChanges: config.shipOnlyMergedChanges,
  });
  registerSigningRoutes(app, {
    keys,
    versions,
    rotation: createKeyRotation({ db: db, audit, keys }),
  });
  return { advisories, kek, keys, checkpoints, previousKeks, vault, secrets, versions, blobs };
}
