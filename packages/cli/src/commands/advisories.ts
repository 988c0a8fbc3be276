import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { zipSync } from 'fflate';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit } from '../output.ts';

/** A zip of the OSV file, or of every .json file below a folder. */
function zipOf(path: string): Uint8Array {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new CliError(`cannot read ${path}`, { exitCode: 2 });
  }
  if (st.isFile()) return readFileSync(path);
  const files: Record<string, Uint8Array> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.json')) files[relative(path, p)] = readFileSync(p);
    }
  };
  walk(path);
  if (Object.keys(files).length === 0) throw new CliError(`${path} has no .json files`, { exitCode: 2 });
  return zipSync(files, { level: 6 });
}

export function registerAdvisoryCommands(program: Command) {
  const advisories = program.command('advisories').description('offline vulnerability data (OSV) for scans');

  examples(
    advisories
      .command('import <path>')
      .description(
        "import OSV data: OSV's npm all.zip, or a folder of OSV JSON files (admins; audited). Records are merged into the data already held, by id and modified date",
      )
      .option('--replace', 'the upload is the whole data: records it does not hold are dropped')
      .action(
        action(async (path: string, flags: { replace?: boolean }, command: Command) => {
          const ctx = ctxOf(command);
          const body = Buffer.from(zipOf(path));
          const res = await fetch(`${ctx.server}/api/v1/advisories${flags.replace ? '?replace=true' : ''}`, {
            method: 'POST',
            headers: {
              'content-type': 'application/zip',
              authorization: `Bearer ${process.env.MICROAPP_TOKEN ?? (await import('../credentials.ts')).loadCredential(ctx.server)?.token ?? ''}`,
            },
            body,
          });
          const data = (await res.json()) as {
            id: string;
            digest: string;
            records: number;
            mode: 'merge' | 'replace';
            added: number;
            updated: number;
            unchanged: number;
            older: number;
            withdrawn: number;
            kept: number;
            warnings: string[];
            detail?: string;
          };
          if (!res.ok) throw new CliError(data.detail ?? `import failed (${res.status})`);
          emit(ctx.json, data, () =>
            [
              `Snapshot ${data.id} (${data.digest}): ${data.records} records now.`,
              `  ${data.added} added, ${data.updated} updated, ${data.unchanged} unchanged, ${data.withdrawn} withdrawn` +
                (data.older ? `, ${data.older} older than the ones held (kept those)` : '') +
                (data.mode === 'merge'
                  ? `; ${data.kept} earlier records kept`
                  : '; everything else was dropped (--replace)'),
              ...data.warnings.map((w) => `  warning: ${w}`),
            ].join('\n'),
          );
        }),
      ),
    [
      'microapp advisories import npm-all.zip',
      'microapp advisories import ./osv-records/',
      'microapp advisories import npm-all.zip --replace',
    ],
  );

  examples(
    advisories
      .command('show')
      .description('the advisory snapshot scans use')
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const { snapshot } = await ctx.client.get<{
            snapshot: { id: string; digest: string; records: number; importedAt: string } | null;
          }>('/api/v1/advisories');
          emit(ctx.json, snapshot, () =>
            snapshot
              ? `${snapshot.id}: ${snapshot.records} records, ${snapshot.digest}, imported ${snapshot.importedAt}`
              : 'no advisory data imported yet',
          );
        }),
      ),
    ['microapp advisories show'],
  );

  examples(
    advisories
      .command('except <app>')
      .description('accept one finding for an app until a date, with a reason (security reviewers; audited)')
      .requiredOption('--advisory <id>', 'e.g. GHSA-xxxx-xxxx-xxxx or CVE-2026-1234')
      .requiredOption('--package <name>', 'the npm package')
      .requiredOption('--reason <text>', 'why the risk is acceptable until then')
      .requiredOption('--expires <date>', 'YYYY-MM-DD, at most 180 days ahead')
      .action(
        action(
          async (
            app: string,
            flags: { advisory: string; package: string; reason: string; expires: string },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const res = await ctx.client.post<{ id: string; expiresAt: string }>(
              `/api/v1/apps/${encodeURIComponent(app)}/scan-exceptions`,
              flags,
            );
            emit(
              ctx.json,
              res,
              () =>
                `Exception ${res.id} for ${flags.advisory} in ${flags.package} (${app}) until ${res.expiresAt.slice(0, 10)}.`,
            );
          },
        ),
      ),
    [
      'microapp advisories except recon --advisory GHSA-aaaa-bbbb-cccc --package lodash --reason "not reachable: only used in tests" --expires 2027-01-31',
    ],
  );
}
