import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { c } from 'tar';
import type { Db } from '../../db/database.ts';
import type { BlobStore } from '../blobs/blob-store.ts';
import { tableShapes } from './backup-tables.ts';

/** What `microapp server backup` wrote. */
export type BackupReport = {
  file: string;
  bytes: number;
  tables: number;
  rows: number;
  artifacts: number;
  archives: number;
  repositories: number;
  migrations: string[];
};

/** The manifest at the top of a backup file (`manifest.json`). */
export type BackupManifest = {
  format: 'microapp-backup/1';
  createdAt: string;
  serverVersion: string;
  dialect: 'sqlite' | 'postgres';
  migrations: string[];
  tables: Record<string, number>;
  artifacts: string[];
  /** Archive id → file name inside `archives/`. */
  archives: Record<string, string>;
  repositories: string[];
  /**
   * The packs of shared repositories (MICROAPP_GIT_STORE=shared), by digest, as files `packs/HEX`; absent in
   * backups before 0037.
   */
  packs?: string[];
  /** Ids of the signing keys: a restore checks that the KEK it is given opens them. */
  signingKeys: string[];
};

const page = 2000;

/** A row as a line of JSON; bytes (none today) as base64 so a restore gives them back as bytes. */
export const encodeRow = (row: Record<string, unknown>) =>
  JSON.stringify(row, (_k, v) =>
    v &&
    typeof v === 'object' &&
    (v as { type?: string }).type === 'Buffer' &&
    Array.isArray((v as { data?: unknown }).data)
      ? { $base64: Buffer.from((v as { data: number[] }).data).toString('base64') }
      : v,
  );

/** A git repository copied while it may take a push: refs first, then objects, so no ref names a missing object. */
function copyRepository(from: string, to: string) {
  mkdirSync(to, { recursive: true, mode: 0o700 });
  for (const entry of readdirSync(from))
    if (entry !== 'objects') cpSync(join(from, entry), join(to, entry), { recursive: true });
  if (existsSync(join(from, 'objects')))
    cpSync(join(from, 'objects'), join(to, 'objects'), { recursive: true });
}

/**
 * Writes a backup of the whole platform to `out` while it serves: every table read in one snapshot (a
 * repeatable-read transaction on PostgreSQL, a read transaction on SQLite), the signed artifacts those rows
 * name (from the blob store), sealed archives, and the app repositories. Rows are JSON lines, so a backup of
 * SQLite restores into PostgreSQL. The KEK is not in it: keep it apart, as the secrets it opens are.
 * @example await writeBackup({ db, blobs, dataDir, out: 'microapp-2026-12-05.tar.gz', version })
 */
export async function writeBackup(deps: {
  db: Db;
  blobs: Pick<BlobStore, 'get'>;
  dataDir: string;
  out: string;
  version: string;
  progress?: (line: string) => void;
}): Promise<BackupReport> {
  const { db } = deps;
  const say = deps.progress ?? (() => {});
  mkdirSync(dirname(deps.out), { recursive: true });
  const staging = mkdtempSync(join(dirname(deps.out), '.microapp-backup-'));
  try {
    const shapes = await tableShapes(db);
    mkdirSync(join(staging, 'database'));
    const counts: Record<string, number> = {};
    let versions: { digest: string }[] = [];
    let archives: { id: string; path: string }[] = [];
    let keys: { id: string }[] = [];
    let packs: string[] = [];
    let migrations: string[] = [];
    const snapshot = db.kysely.transaction();
    await (db.dialect === 'postgres' ? snapshot.setIsolationLevel('repeatable read') : snapshot).execute(
      async (trx) => {
        const k = trx as unknown as Kysely<Record<string, Record<string, unknown>>>;
        migrations = (
          await sql<{ name: string }>`select name from kysely_migration order by name`.execute(k)
        ).rows.map((r) => r.name);
        for (const shape of shapes) {
          say(`table ${shape.name}`);
          const lines: string[] = [];
          for (let offset = 0; ; offset += page) {
            let q = k.selectFrom(shape.name).select(shape.columns);
            for (const column of shape.key) q = q.orderBy(column);
            const rows = await q.limit(page).offset(offset).execute();
            for (const row of rows) lines.push(encodeRow(row));
            if (rows.length < page) break;
          }
          writeFileSync(
            join(staging, 'database', `${shape.name}.jsonl`),
            lines.length ? `${lines.join('\n')}\n` : '',
          );
          counts[shape.name] = lines.length;
        }
        versions = (await k.selectFrom('app_versions').select('digest').distinct().execute()) as {
          digest: string;
        }[];
        archives = (await k
          .selectFrom('app_archives')
          .select(['id', 'path'])
          .where('purged_at', 'is', null)
          .execute()) as { id: string; path: string }[];
        keys = (await k.selectFrom('signing_keys').select('keyid as id').execute()) as { id: string }[];
        packs = (await k.selectFrom('repo_packs').select('digest').distinct().execute()).map((p) =>
          String(p.digest),
        );
      },
    );
    mkdirSync(join(staging, 'artifacts'));
    for (const [i, v] of versions.entries()) {
      say(`artifact ${i + 1} of ${versions.length}`);
      writeFileSync(
        join(staging, 'artifacts', v.digest.slice('sha256:'.length)),
        await deps.blobs.get('artifact', v.digest),
      );
    }
    mkdirSync(join(staging, 'archives'));
    const archiveFiles: Record<string, string> = {};
    for (const a of archives) {
      archiveFiles[a.id] = `${a.id}.sealed`;
      const to = join(staging, 'archives', archiveFiles[a.id]!);
      // Archives are in the blob store by digest; an earlier release wrote them as files.
      if (a.path.startsWith('sha256:')) writeFileSync(to, await deps.blobs.get('archive', a.path));
      else if (existsSync(a.path)) copyFileSync(a.path, to);
      else throw new Error(`the archive ${a.id} is missing from ${a.path}: the backup would be incomplete`);
    }
    // Shared repositories: their packs, from the blob store (their branches are rows of repo_refs).
    mkdirSync(join(staging, 'packs'));
    for (const [i, digest] of packs.entries()) {
      say(`repository pack ${i + 1} of ${packs.length}`);
      writeFileSync(
        join(staging, 'packs', digest.slice('sha256:'.length)),
        await deps.blobs.get('pack', digest),
      );
    }
    const reposDir = join(deps.dataDir, 'repos');
    const repositories = existsSync(reposDir) ? readdirSync(reposDir).filter((r) => r.endsWith('.git')) : [];
    for (const r of repositories) {
      say(`repository ${r}`);
      copyRepository(join(reposDir, r), join(staging, 'repos', r));
    }
    // Signed audit checkpoints as the platform wrote them beside the database.
    if (existsSync(join(deps.dataDir, 'audit')))
      cpSync(join(deps.dataDir, 'audit'), join(staging, 'audit'), { recursive: true });
    const manifest: BackupManifest = {
      format: 'microapp-backup/1',
      createdAt: new Date().toISOString(),
      serverVersion: deps.version,
      dialect: db.dialect,
      migrations,
      tables: counts,
      artifacts: versions.map((v) => v.digest),
      archives: archiveFiles,
      repositories,
      packs,
      signingKeys: keys.map((k) => k.id),
    };
    writeFileSync(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    say('packing');
    const tmp = `${deps.out}.partial`;
    await c({ gzip: true, cwd: staging, portable: true, file: tmp }, readdirSync(staging));
    // The backup holds everything the database does (sealed secrets, hashed tokens): for its owner only.
    chmodSync(tmp, 0o600);
    renameSync(tmp, deps.out);
    return {
      file: deps.out,
      bytes: statSync(deps.out).size,
      tables: shapes.length,
      rows: Object.values(counts).reduce((a, b) => a + b, 0),
      artifacts: versions.length,
      archives: archives.length,
      repositories: repositories.length,
      migrations,
    };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
