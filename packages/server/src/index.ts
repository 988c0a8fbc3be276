export { loadConfig, ConfigError, type ServerConfig, type ConfigFlags } from './config.ts';
export { startServer, type RunningServer } from './server.ts';
export { openDatabase, type Db, type DatabaseOptions } from './db/database.ts';
export { migrateToLatest } from './db/migrations.ts';
export { AppError, type Problem, type ErrorCode, errorCatalog } from './errors.ts';
export { Manifest, dataClasses } from './modules/catalog/manifest-schema.ts';
export { devUsers } from './modules/identity/dev-users.ts';
export { version } from './version.ts';
