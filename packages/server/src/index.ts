export { ConfigError, type ConfigFlags, loadConfig, type ServerConfig } from './config.ts';
export { type DatabaseOptions, type Db, openDatabase } from './db/database.ts';
export { migrateToLatest } from './db/migrations.ts';
export { AppError, type ErrorCode, errorCatalog, type Problem } from './errors.ts';
export { dataClasses, Manifest } from './modules/catalog/manifest-schema.ts';
export { devUsers } from './modules/identity/dev-users.ts';
export { type RunningServer, startServer } from './server.ts';
export {
  type BackupReport,
  backupServer,
  RestoreError,
  type RestoreReport,
  restoreServer,
} from './server-backup.ts';
export { version } from './version.ts';
