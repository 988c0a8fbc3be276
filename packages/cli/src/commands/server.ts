import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError } from '../client.ts';
import { action, examples } from '../context.ts';
import { emit, progress } from '../output.ts';
import { serverCode } from '../server-code.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new CliError(`not a port number: ${value}`, { exitCode: 2 });
  return n;
}

type ServerFlags = {
  dev?: boolean;
  port?: number;
  host?: string;
  dataDir?: string;
  config?: string;
  devIdpPort?: number;
};

async function config(flags: ServerFlags) {
  const { ConfigError, loadConfig } = await serverCode('server');
  try {
    return loadConfig(flags, process.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, { exitCode: 2 });
    throw error;
  }
}

export function registerServerCommands(program: Command) {
  const server = program
    .command('server')
    .description('run the microapp platform server')
    .option(
      '--dev',
      'local trial: SQLite under ./.microapp and a built-in identity provider with seeded users',
    )
    .option('--port <port>', 'HTTP port (env MICROAPP_PORT, default 8080)', port)
    .option('--host <host>', 'address to listen on (env MICROAPP_HOST, default 127.0.0.1)')
    .option('--data-dir <dir>', 'where data lives (env MICROAPP_DATA_DIR, default ./.microapp)')
    .option('--config <file>', 'JSON config file (env MICROAPP_CONFIG)')
    .option('--dev-idp-port <port>', 'port of the built-in identity provider in --dev (default 8081)', port)
    .action(
      action(async (flags: ServerFlags) => {
        const { startServer } = await serverCode('server');
        const running = await startServer(await config(flags));
        process.stderr.write(
          `microapp ${flags.dev ? '(dev) ' : ''}listening on ${running.url}` +
            (running.devIdp
              ? `\n  development sign-in at ${running.devIdp.issuer}; try: microapp login --dev-user alice@example.com\n`
              : '\n'),
        );
        const stop = async () => {
          await running.close();
          process.exit(0);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      }),
    );
  examples(server, [
    'microapp server --dev',
    'DATABASE_URL=postgres://localhost/microapp microapp server --config /etc/microapp.json',
  ]);

  const migrate = server
    .command('migrate')
    .description('apply pending database migrations (forward-only) and exit')
    .option('--data-dir <dir>', 'where the SQLite file lives when DATABASE_URL is not set')
    .action(
      action(async (flags: { dataDir?: string }) => {
        const { migrateToLatest, openDatabase } = await serverCode('server');
        // A server set up for single sign-on migrates with its own settings, not as --dev (which it refuses).
        const cfg = await offlineConfig(flags.dataDir);
        if (cfg.database.kind === 'sqlite') mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
        const db = openDatabase(cfg.database);
        try {
          const applied = await migrateToLatest(db);
          process.stdout.write(
            applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n',
          );
        } finally {
          await db.destroy();
        }
      }),
    );
  examples(migrate, ['DATABASE_URL=postgres://localhost/microapp microapp server migrate']);

  const backup = server
    .command('backup')
    .description(
      'write the whole platform (database, signed artifacts, archives, app repositories) to one file while it serves; the KEK is not in it',
    )
    .requiredOption('--out <file>', 'the backup file to write (tar.gz, readable by you only)')
    .option('--data-dir <dir>', 'the data folder (env MICROAPP_DATA_DIR, default ./.microapp)')
    .action(
      action(async (flags: { out: string; dataDir?: string }, command: Command) => {
        const { json, dataDir } = command.optsWithGlobals<{ json?: boolean; dataDir?: string }>();
        const { backupServer } = await serverCode('server');
        const report = await backupServer(await offlineConfig(flags.dataDir ?? dataDir), flags.out, progress);
        emit(Boolean(json), report, () =>
          [
            `backup written to ${report.file} (${(report.bytes / 1024 / 1024).toFixed(1)} MB)`,
            `  ${report.rows} rows in ${report.tables} tables, ${report.artifacts} artifacts, ${report.archives} archives, ${report.repositories} repositories`,
            '  keep the KEK (MICROAPP_KEK or MICROAPP_KEK_FILE) apart from it: a restore needs both',
          ].join('\n'),
        );
      }),
    );
  examples(backup, [
    'DATABASE_URL=postgres://db.internal/microapp microapp server backup --out /backups/microapp-$(date +%F).tar.gz',
    'microapp server backup --data-dir ./.microapp --out microapp.tar.gz --json',
  ]);

  const restore = server
    .command('restore')
    .description(
      'put a backup back into an empty database and data folder; nothing is written unless the KEK opens its signing key',
    )
    .argument('<file>', 'a file `microapp server backup` wrote')
    .option(
      '--data-dir <dir>',
      'the data folder to restore into (env MICROAPP_DATA_DIR, default ./.microapp)',
    )
    .action(
      action(async (file: string, flags: { dataDir?: string }, command: Command) => {
        const { json, dataDir } = command.optsWithGlobals<{ json?: boolean; dataDir?: string }>();
        const { RestoreError, restoreServer } = await serverCode('server');
        const cfg = await offlineConfig(flags.dataDir ?? dataDir);
        if (cfg.database.kind === 'sqlite') mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
        try {
          const report = await restoreServer(cfg, file, progress);
          emit(Boolean(json), report, () =>
            [
              `restored the backup of ${report.createdAt}: ${report.rows} rows, ${report.artifacts} artifacts, ${report.archives} archives, ${report.repositories} repositories`,
              ...(report.kekChecked
                ? []
                : [
                    '  the KEK was not checked: the backup holds no signing key yet (nothing was ever signed)',
                  ]),
              '  start the server; check the audit chain with: microapp audit verify',
            ].join('\n'),
          );
        } catch (error) {
          if (error instanceof RestoreError) throw new CliError(error.message, { exitCode: 2 });
          throw error;
        }
      }),
    );
  examples(restore, [
    'DATABASE_URL=postgres://db.internal/microapp_new MICROAPP_KEK_FILE=/run/secrets/kek microapp server restore /backups/microapp-2026-12-05.tar.gz',
  ]);
}

/**
 * The configuration `backup` and `restore` run with: a server configured for single sign-on loads as it is;
 * otherwise as `--dev` does (the data folder's own KEK file).
 */
async function offlineConfig(dataDir: string | undefined) {
  const { ConfigError, loadConfig } = await serverCode('server');
  try {
    return loadConfig({ dev: !process.env.MICROAPP_OIDC_ISSUER, dataDir }, process.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, { exitCode: 2 });
    throw error;
  }
}
