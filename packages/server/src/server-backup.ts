import { join } from 'node:path';
import type { ServerConfig } from './config.ts';
import { openDatabase } from './db/database.ts';
import { type RestoreReport, restoreBackup } from './modules/backup/backup-restore.ts';
import { type BackupReport, writeBackup } from './modules/backup/backup-write.ts';
import { createFolderBlobStore } from './modules/blobs/blob-store.ts';
import { createOciBlobStore } from './modules/blobs/oci-blob-store.ts';
import { loadKek } from './modules/signing/key-store.ts';
import { version } from './version.ts';

export { RestoreError, type RestoreReport } from './modules/backup/backup-restore.ts';
export type { BackupReport } from './modules/backup/backup-write.ts';

const blobsOf = (config: ServerConfig) =>
  config.blobRegistry ? createOciBlobStore(config.blobRegistry) : createFolderBlobStore(config.dataDir);

/** `microapp server backup`: the configured platform's database, blobs and repositories into one file. */
export async function backupServer(
  config: ServerConfig,
  out: string,
  progress?: (line: string) => void,
): Promise<BackupReport> {
  const db = openDatabase(config.database);
  try {
    return await writeBackup({ db, blobs: blobsOf(config), dataDir: config.dataDir, out, version, progress });
  } finally {
    await db.destroy();
  }
}

/** `microapp server restore`: a backup into the configured, empty, database and data folder. */
export async function restoreServer(
  config: ServerConfig,
  file: string,
  progress?: (line: string) => void,
): Promise<RestoreReport> {
  const kek = loadKek({ env: process.env, devFile: config.dev ? join(config.dataDir, 'kek') : null });
  const db = openDatabase(config.database);
  try {
    return await restoreBackup({ db, blobs: blobsOf(config), dataDir: config.dataDir, file, kek, progress });
  } finally {
    await db.destroy();
  }
}
