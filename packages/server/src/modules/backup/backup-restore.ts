import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { x } from 'tar';
import type { Db } from '../../db/database.ts';
import { knownMigrations, migrateToLatest } from '../../db/migrations.ts';
import type { Database } from '../../db/schema.ts';
import { type BlobStore, digestOf } from '../blobs/blob-store.ts';
import { createKeyStore } from '../signing/key-store.ts';
import { restoreOrder, tableShapes } from './backup-tables.ts';
import type { BackupManifest } from './backup-write.ts';

/** What `microapp server restore` put back. */
export type RestoreReport = {
  rows: number;
  tables: number;
  artifacts: number;
  archives: number;
  repositories: number;
  createdAt: string;
  /** False when the backup holds no signing key yet (nothing was ever signed): the KEK was not checked. */
  kekChecked: boolean;
};

/** A restore that cannot go on, and why, in words for the operator. */
export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreError';
  }
}

const decodeRow = (line: string) =>
  JSON.parse(line, (_k, v) =>
    v && typeof v === 'object' && typeof (v as { $base64?: unknown }).$base64 === 'string'
      ? Buffer.from((v as { $base64: string }).$base64, 'base64')
      : v,
  ) as Record<string, unknown>;

/**
 * Puts a backup back into an empty database and data folder: the schema is migrated, every row is written
 * in one transaction that commits only if `kek` opens the backup's signing keys (a wrong KEK changes
 * nothing), artifacts go to the blob store after their digests are checked, and archives and repositories
 * to the data folder. The database may be of the other kind than the one backed up.
 * @example await restoreBackup({ db, blobs, dataDir, file: 'microapp-2026-12-05.tar.gz', kek })
 */
export async function restoreBackup(deps: {
  db: Db;
  blobs: Pick<BlobStore, 'put' | 'attach'>;
  dataDir: string;
  file: string;
  kek: Buffer;
  progress?: (line: string) => void;
}): Promise<RestoreReport> {
  const { db } = deps;
  const say = deps.progress ?? (() => {});
  if (!existsSync(deps.file)) throw new RestoreError(`no backup file at ${deps.file}`);
  mkdirSync(deps.dataDir, { recursive: true, mode: 0o700 });
  const staging = mkdtempSync(join(deps.dataDir, '.restore-'));
  try {
    // Only plain files and folders come out; a link in the file stops the restore.
    await x({
      file: deps.file,
      cwd: staging,
      strict: true,
      filter: (path, entry) => {
        const type = (entry as { type?: string }).type;
        if (type !== 'File' && type !== 'Directory')
          throw new RestoreError(
            `the backup holds ${path}, which is not a file or a folder: it was not made by microapp`,
          );
        return true;
      },
    }).catch((error: unknown) => {
      if (error instanceof RestoreError) throw error;
      throw new RestoreError(`${deps.file} is not a microapp backup (a tar.gz): ${(error as Error).message}`);
    });
    const manifestFile = join(staging, 'manifest.json');
    if (!existsSync(manifestFile))
      throw new RestoreError(`${deps.file} has no manifest.json: it is not a microapp backup`);
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as BackupManifest;
    if (manifest.format !== 'microapp-backup/1')
      throw new RestoreError(
        `${deps.file} is a backup of format ${String(manifest.format)}, which this release does not read`,
      );
    const known = knownMigrations();
    const newer = manifest.migrations.filter((m) => !known.includes(m));
    if (newer.length)
      throw new RestoreError(
        `the backup was made by a newer release (migrations ${newer.join(', ')}): restore it with that release or a later one`,
      );

    say('migrating the database');
    await migrateToLatest(db);
    const k = db.kysely as unknown as Kysely<Record<string, Record<string, unknown>>>;
    for (const table of ['apps', 'users', 'audit_events']) {
      const n = await k.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
      if (Number(n.n) > 0)
        throw new RestoreError(
          `the database already holds ${table} rows: a restore goes into an empty database (a new PostgreSQL database, or a data folder without microapp.sqlite)`,
        );
    }
    const shapes = restoreOrder(await tableShapes(db));
    // Archives go to the blob store, and their rows name them by digest (as the platform writes them now).
    const archiveIds = Object.keys(manifest.archives);

    let rows = 0;
    await db.kysely.transaction().execute(async (trx) => {
      const t = trx as unknown as Kysely<Record<string, Record<string, unknown>>>;
      for (const shape of shapes) {
        const file = join(staging, 'database', `${shape.name}.jsonl`);
        if (!existsSync(file)) continue;
        say(`table ${shape.name}`);
        const wanted = new Set(shape.columns);
        const batch: Record<string, unknown>[] = [];
        const flush = async () => {
          if (batch.length) await t.insertInto(shape.name).values(batch.splice(0)).execute();
        };
        for (const line of readFileSync(file, 'utf8').split('\n')) {
          if (!line) continue;
          const row = decodeRow(line);
          for (const key of Object.keys(row)) if (!wanted.has(key)) delete row[key];
          if (shape.name === 'app_archives' && typeof row.id === 'string' && archiveIds.includes(row.id))
            row.path = row.digest;
          batch.push(row);
          rows++;
          if (batch.length >= 200) await flush();
        }
        await flush();
        for (const column of shape.serial)
          await sql`select setval(pg_get_serial_sequence(${shape.name}, ${column}), coalesce((select max(${sql.ref(column)}) from ${sql.table(shape.name)}), 0) + 1, false)`.execute(
            t,
          );
      }
      // A KEK that does not open the signing keys would restore a platform that cannot sign or verify.
      if (!(await createKeyStore({ db: trx as unknown as Kysely<Database>, kek: deps.kek }).usable()))
        throw new RestoreError(
          'the key-encryption key given (MICROAPP_KEK or MICROAPP_KEK_FILE) does not open the signing key in this backup: give the KEK of the platform that made it; nothing was restored',
        );
    });

    say('artifacts');
    for (const digest of manifest.artifacts) {
      const bytes = readFileSync(join(staging, 'artifacts', digest.slice('sha256:'.length)));
      if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest)
        throw new RestoreError(`the artifact ${digest} in the backup was changed since the backup was made`);
      await deps.blobs.put('artifact', bytes);
      // Its Sigstore bundles beside it again, where the store keeps them (an OCI registry's referrers).
      for (const v of await db.kysely
        .selectFrom('app_versions')
        .select('bundles')
        .where('digest', '=', digest)
        .execute())
        await deps.blobs.attach?.(
          { digest, size: bytes.length },
          Object.entries(JSON.parse(v.bundles) as Record<string, unknown>).map(([name, bundle]) => ({
            name,
            bundle,
          })),
        );
    }
    for (const id of archiveIds)
      await deps.blobs.put('archive', readFileSync(join(staging, 'archives', manifest.archives[id]!)));
    for (const digest of manifest.packs ?? []) {
      const bytes = readFileSync(join(staging, 'packs', digest.slice('sha256:'.length)));
      if (digestOf(bytes) !== digest)
        throw new RestoreError(
          `the repository pack ${digest} in the backup was changed since the backup was made`,
        );
      await deps.blobs.put('pack', bytes);
    }
    if (existsSync(join(staging, 'audit')))
      cpSync(join(staging, 'audit'), join(deps.dataDir, 'audit'), { recursive: true, force: false });
    say('repositories');
    const repos = join(staging, 'repos');
    if (existsSync(repos))
      for (const r of readdirSync(repos))
        cpSync(join(repos, r), join(deps.dataDir, 'repos', r), {
          recursive: true,
          errorOnExist: false,
          force: false,
        });
    return {
      rows,
      tables: shapes.length,
      artifacts: manifest.artifacts.length,
      archives: archiveIds.length,
      repositories: manifest.repositories.length,
      createdAt: manifest.createdAt,
      kekChecked: manifest.signingKeys.length > 0,
    };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
