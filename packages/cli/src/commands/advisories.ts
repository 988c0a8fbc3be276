import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';

/** A zip of the OSV file, or of every .json file below a folder. */
async function zipOf(path: string): Promise<Uint8Array> {
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
  const { zipSync } = await import('fflate');
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
          const body = Buffer.from(await zipOf(path));
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

  type Exception = {
    id: string;
    advisory: string;
    package: string;
    reason: string;
    expiresAt: string;
    approvedBy: string;
    state: 'live' | 'expired' | 'revoked';
    revokedBy: string | null;
  };

  examples(
    advisories
      .command('except <app>')
      .description(
        'accept findings of an app until a date, with a reason (security reviewers; audited): one or more advisories, for one package or all of them',
      )
      .requiredOption(
        '--advisory <id>',
        'an advisory id from the scan, e.g. GHSA-xxxx-xxxx-xxxx or CVE-2026-1234; repeat it for several',
        (value: string, previous: string[] = []) => [...previous, value],
      )
      .option('--package <name>', "the npm package; '*' for every package of the app", '*')
      .requiredOption('--reason <text>', 'why the risk is acceptable until then')
      .requiredOption('--expires <date>', 'YYYY-MM-DD, at most 180 days ahead')
      .action(
        action(
          async (
            app: string,
            flags: { advisory: string[]; package: string; reason: string; expires: string },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const res = await ctx.client.post<{ items: Exception[] }>(
              `/api/v1/apps/${encodeURIComponent(app)}/scan-exceptions`,
              {
                advisories: flags.advisory,
                package: flags.package,
                reason: flags.reason,
                expires: flags.expires,
              },
            );
            emit(ctx.json, res, () =>
              res.items
                .map(
                  (e) =>
                    `Exception ${e.id}: ${e.advisory} in ${e.package === '*' ? 'every package' : e.package} of ${app}, until ${e.expiresAt.slice(0, 10)}.`,
                )
                .join('\n'),
            );
          },
        ),
      ),
    [
      'microapp advisories except recon --advisory GHSA-aaaa-bbbb-cccc --package lodash --reason "not reachable: only used in tests" --expires 2027-01-31',
      'microapp advisories except recon --advisory GHSA-aaaa-bbbb-cccc --advisory CVE-2026-1234 --reason "…" --expires 2027-01-31',
    ],
  );

  examples(
    advisories
      .command('exceptions <app>')
      .description("an app's scan exceptions, newest first: live, expired and revoked")
      .action(
        action(async (app: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const res = await ctx.client.get<{ items: Exception[] }>(
            `/api/v1/apps/${encodeURIComponent(app)}/scan-exceptions`,
          );
          emit(ctx.json, res, () =>
            res.items.length
              ? table(
                  ['id', 'advisory', 'package', 'until', 'state', 'approved by', 'reason'],
                  res.items.map((e) => [
                    e.id,
                    e.advisory,
                    e.package,
                    e.expiresAt.slice(0, 10),
                    e.state === 'revoked' ? `revoked by ${e.revokedBy}` : e.state,
                    e.approvedBy,
                    e.reason,
                  ]),
                )
              : `${app} has no scan exceptions.`,
          );
        }),
      ),
    ['microapp advisories exceptions recon', 'microapp advisories exceptions recon --json'],
  );

  examples(
    advisories
      .command('revoke <app> <id>')
      .description(
        'end a scan exception now (security reviewers and admins; audited): the finding blocks again',
      )
      .action(
        action(async (app: string, id: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const res = await ctx.client.delete<Exception>(
            `/api/v1/apps/${encodeURIComponent(app)}/scan-exceptions/${encodeURIComponent(id)}`,
          );
          emit(ctx.json, res, () => `Revoked ${res.id} (${res.advisory} in ${res.package} of ${app}).`);
        }),
      ),
    ['microapp advisories revoke recon exc_01jb…'],
  );
}
