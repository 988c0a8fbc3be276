import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { LifecycleView } from '../../../server/src/modules/lifecycle/lifecycle-service.ts';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, progress, table } from '../output.ts';

const day = (iso: string | null) => (iso ? iso.slice(0, 10) : 'never');
const path = (name: string, rest = '') => `/api/v1/apps/${encodeURIComponent(name)}${rest}`;

function describe(l: LifecycleView): string {
  return [
    `${l.app} (owner ${l.owner})`,
    `stage:      ${l.stage}${l.reason ? ` (${l.reason})` : ''} since ${day(l.since)}`,
    `last used:  ${day(l.lastUsedAt)}${l.idleDays ? `, idle for ${l.idleDays} days` : ''}`,
    `expires:    ${day(l.expiresAt)}`,
    `next step:  ${l.nextStep ? `${l.nextStep.action} on ${day(l.nextStep.at)}` : 'none scheduled'}`,
    ...(l.exemption ? [`exempt:     ${l.exemption.reason} (by ${l.exemption.by})`] : []),
    ...(l.renewalRequested
      ? [
          `renewal:    asked by ${l.renewalRequested.by} on ${day(l.renewalRequested.at)}, waiting for a reviewer`,
        ]
      : []),
    ...(l.archive
      ? [
          `archive:    ${l.archive.bytes} bytes, encrypted, kept until ${day(l.archive.expiresAt)}; \`microapp restore ${l.app}\` brings it back`,
        ]
      : []),
  ].join('\n');
}

function requireText(value: string | undefined, flag: string, example: string): string {
  if (!value || value.trim().length < 10)
    throw new CliError(`${flag} is required, in at least 10 characters, e.g. ${example}`, { exitCode: 2 });
  return value.trim();
}

/** Expiry, renewal, inactivity, decommission and restore; notifications; jobs and the dev clock. */
export function registerLifecycleCommands(program: Command) {
  examples(
    program
      .command('lifecycle <app>')
      .description('where an app stands: stage, last use, expiry, the next scheduled step, archive')
      .action(
        action(async (name: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const l = await ctx.client.get<LifecycleView>(path(name, '/lifecycle'));
          emit(ctx.json, l, () => describe(l));
        }),
      ),
    ['microapp lifecycle team-lunch-poll', 'microapp lifecycle team-lunch-poll --json'],
  );

  examples(
    program
      .command('renew <app>')
      .description(
        'keep an app: re-confirm its purpose (re-scanned against today’s advisories); answers an inactivity warning or a stop. Reviewers approve high-tier renewals with --approve',
      )
      .option('--purpose <text>', 'why the app is still needed')
      .option('--approve', 'as a reviewer: approve the renewal a high-tier app’s owner asked for')
      .action(
        action(async (name: string, flags: { purpose?: string; approve?: boolean }, command: Command) => {
          const ctx = ctxOf(command);
          progress(`renewing ${name} (re-scanning against today’s advisories)`);
          const r = flags.approve
            ? await ctx.client.post<{ status: string; lifecycle: LifecycleView }>(
                path(name, '/renewal/approve'),
              )
            : await ctx.client.post<{ status: string; lifecycle: LifecycleView }>(path(name, '/renewal'), {
                purpose: requireText(
                  flags.purpose,
                  '--purpose',
                  '--purpose "Still used for the month-end close"',
                ),
              });
          emit(ctx.json, r, () =>
            r.status === 'pending_review'
              ? `${name} is high tier: a reviewer approves the renewal with \`microapp renew ${name} --approve\`. They have been told.`
              : `${name} is renewed until ${day(r.lifecycle.expiresAt)}.`,
          );
        }),
      ),
    [
      'microapp renew team-lunch-poll --purpose "Still used for the Friday lunch vote"',
      'microapp renew bank-reconciliation --approve',
    ],
  );

  examples(
    program
      .command('decommission <app>')
      .description(
        'retire an app now (owner or admin): stop it, archive its data encrypted, delete its secrets; reversible with `microapp restore` while the archive is kept',
      )
      .option('--reason <text>', 'why it is retired (kept in the audit trail)')
      .action(
        action(async (name: string, flags: { reason?: string }, command: Command) => {
          const ctx = ctxOf(command);
          const reason = requireText(flags.reason, '--reason', '--reason "Replaced by the finance portal"');
          progress(`stopping ${name} and archiving its data`);
          const l = await ctx.client.post<LifecycleView>(path(name, '/decommission'), { reason });
          emit(ctx.json, l, () => `${name} is decommissioned.\n${describe(l)}`);
        }),
      ),
    ['microapp decommission team-lunch-poll --reason "Replaced by the finance portal"'],
  );

  examples(
    program
      .command('restore <app>')
      .description(
        'bring a decommissioned app back with its data (owner or admin); its secrets must be set again',
      )
      .action(
        action(async (name: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          progress(`restoring ${name} from its archive`);
          const r = await ctx.client.post<{ lifecycle: LifecycleView; secretsToSetAgain: string[] }>(
            path(name, '/restore'),
          );
          emit(ctx.json, r, () =>
            [
              `${name} is restored with its data; it starts on its next request.`,
              ...(r.secretsToSetAgain.length
                ? [
                    `Its secrets were deleted when it was retired; set them again: ${r.secretsToSetAgain
                      .map((s) => `microapp secrets set ${name} ${s}`)
                      .join(', ')}`,
                  ]
                : []),
            ].join('\n'),
          );
        }),
      ),
    ['microapp restore team-lunch-poll'],
  );

  examples(
    program
      .command('exempt <app>')
      .description(
        'admins: exempt an app from inactivity checks (expiry still applies), or --remove the exemption',
      )
      .option('--reason <text>', 'why it is exempt, e.g. it is used once a quarter')
      .option('--remove', 'remove the exemption')
      .action(
        action(async (name: string, flags: { reason?: string; remove?: boolean }, command: Command) => {
          const ctx = ctxOf(command);
          const l = flags.remove
            ? await ctx.client.delete<LifecycleView>(path(name, '/exemption'))
            : await ctx.client.put<LifecycleView>(path(name, '/exemption'), {
                reason: requireText(flags.reason, '--reason', '--reason "Used once a quarter for the audit"'),
              });
          emit(ctx.json, l, () => describe(l));
        }),
      ),
    [
      'microapp exempt quarterly-audit --reason "Used once a quarter for the audit"',
      'microapp exempt quarterly-audit --remove',
    ],
  );

  examples(
    program
      .command('notifications')
      .description('your notifications, newest first, each with the console page that answers it')
      .option('--unread', 'only those not yet marked read')
      .option('--read <id>', 'mark one read')
      .option('--email <on|off>', 'also send them to you by e-mail (the inbox always has them)')
      .option('--digest <on|off>', 'reviewers: the daily digest of apps waiting for you')
      .action(
        action(
          async (
            flags: { unread?: boolean; read?: string; email?: string; digest?: string },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            if (flags.email !== undefined || flags.digest !== undefined) {
              const onOff = (v: string | undefined, flag: string) => {
                if (v === undefined) return undefined;
                if (v !== 'on' && v !== 'off')
                  throw new CliError(`${flag} takes on or off, not ${v}`, { exitCode: 2 });
                return v === 'on';
              };
              const body = { email: onOff(flags.email, '--email'), digest: onOff(flags.digest, '--digest') };
              const p = await ctx.client.put<{ email: boolean; digest: boolean }>(
                '/api/v1/notifications/preferences',
                body,
              );
              emit(
                ctx.json,
                p,
                () => `e-mail: ${p.email ? 'on' : 'off'}; daily review digest: ${p.digest ? 'on' : 'off'}.`,
              );
              return;
            }
            if (flags.read) {
              const r = await ctx.client.post(`/api/v1/notifications/${encodeURIComponent(flags.read)}/read`);
              emit(ctx.json, r, () => `${flags.read} marked read.`);
              return;
            }
            const { items } = await ctx.client.get<{
              items: {
                id: string;
                subject: string;
                body: string;
                action: string | null;
                createdAt: string;
                readAt: string | null;
              }[];
            }>(`/api/v1/notifications${flags.unread ? '?unread=true' : ''}`);
            emit(ctx.json, { items }, () =>
              items.length
                ? items
                    .map(
                      (n) =>
                        `${n.readAt ? ' ' : '*'} ${day(n.createdAt)}  ${n.subject}  (${n.id})\n    ${n.body.replace(/\n/g, '\n    ')}${n.action ? `\n    → ${n.action}` : ''}`,
                    )
                    .join('\n\n')
                : 'No notifications.',
            );
          },
        ),
      ),
    [
      'microapp notifications --unread',
      'microapp notifications --read ntf_0123456789abcdefghij',
      'microapp notifications --email off --digest on',
    ],
  );

  examples(
    program
      .command('jobs')
      .description('admins and auditors: the scheduled jobs, when each runs next, and how the last run went')
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{
            items: {
              name: string;
              nextRunAt: string;
              running: boolean;
              runs: number;
              lastFinishedAt: string | null;
              lastError: string | null;
            }[];
          }>('/api/v1/jobs');
          emit(ctx.json, { items }, () =>
            table(
              ['job', 'next run', 'runs', 'last finished', 'state'],
              items.map((j) => [
                j.name,
                j.nextRunAt.slice(0, 16).replace('T', ' '),
                String(j.runs),
                j.lastFinishedAt ? j.lastFinishedAt.slice(0, 16).replace('T', ' ') : '-',
                j.running ? 'running' : j.lastError ? `failed: ${j.lastError}` : 'ok',
              ]),
            ),
          );
        }),
      ),
    ['microapp jobs', 'microapp jobs --json'],
  );

  const apps = program.commands.find((c) => c.name() === 'apps') ?? program.command('apps');
  examples(
    apps
      .command('transfer <app>')
      .description(
        'give an app a new owner: admins, or the manager an app was offered to when its owner left (taking it over)',
      )
      .requiredOption('--to <email>', 'the new owner; they must have signed in once')
      .action(
        action(async (name: string, flags: { to: string }, command: Command) => {
          const ctx = ctxOf(command);
          const a = await ctx.client.post<{ name: string; owner: string }>(path(name, '/owner'), {
            owner: flags.to,
          });
          emit(ctx.json, a, () => `${a.name} is now owned by ${a.owner}.`);
        }),
      ),
    ['microapp apps transfer bank-reconciliation --to dave@example.com'],
  );

  examples(
    apps
      .command('export <app>')
      .description(
        'download an app’s export bundle: source, SBOM, attestations, manifest, data classification, access rules, audit excerpt, hardening checklist',
      )
      .option('--out <file>', 'where to write the tar.gz (default NAME-export.tar.gz)')
      .action(
        action(async (name: string, flags: { out?: string }, command: Command) => {
          const ctx = ctxOf(command);
          const file = flags.out ?? `${name}-export.tar.gz`;
          progress(`exporting ${name}`);
          const bytes = await ctx.client.download(path(name, '/export'));
          writeFileSync(file, bytes);
          emit(ctx.json, { file, bytes: bytes.length }, () => `wrote ${file} (${bytes.length} bytes)`);
        }),
      ),
    ['microapp apps export bank-reconciliation --out recon-export.tar.gz'],
  );

  examples(
    program
      .command('graduate <app>')
      .description(
        'admins: hand an app to an engineering team; its lead owns it, inactivity and expiry no longer apply; writes the export bundle',
      )
      .requiredOption('--team <team>', 'the engineering team, e.g. payments-eng')
      .requiredOption('--owner <email>', 'the team lead who owns it from now on')
      .option('--out <file>', 'where to write the export bundle (default NAME-export.tar.gz)')
      .action(
        action(
          async (name: string, flags: { team: string; owner: string; out?: string }, command: Command) => {
            const ctx = ctxOf(command);
            const a = await ctx.client.post<{ owner: string }>(path(name, '/graduation'), {
              team: flags.team,
              owner: flags.owner,
            });
            const file = flags.out ?? `${name}-export.tar.gz`;
            progress(`writing the export bundle to ${file}`);
            const bytes = await ctx.client.download(path(name, '/export'));
            writeFileSync(file, bytes);
            emit(
              ctx.json,
              { app: name, team: flags.team, owner: a.owner, file },
              () =>
                `${name} graduated to ${flags.team}; ${a.owner} owns it. Export bundle: ${file} (start with its HARDENING.md).`,
            );
          },
        ),
      ),
    ['microapp graduate bank-reconciliation --team payments-eng --owner lead@example.com'],
  );

  const users = program.command('users').description('people on the platform (admins)');
  examples(
    users
      .command('disable <email>')
      .description(
        'disable someone who left: sign-in refused, sessions and tokens revoked; their apps are offered to their manager, or frozen',
      )
      .option('--reason <text>', 'why (kept in the audit trail)')
      .action(
        action(async (email: string, flags: { reason?: string }, command: Command) => {
          const ctx = ctxOf(command);
          const reason = requireText(flags.reason, '--reason', '--reason "Left the company on 2026-11-30"');
          const r = await ctx.client.post<{
            user: string;
            offeredTo: string | null;
            offered: string[];
            frozen: string[];
          }>(`/api/v1/users/${encodeURIComponent(email)}/disable`, { reason });
          emit(ctx.json, r, () =>
            [
              `${r.user} is disabled; their sessions and API tokens no longer work.`,
              ...(r.offered.length ? [`Offered to ${r.offeredTo}: ${r.offered.join(', ')}`] : []),
              ...(r.frozen.length
                ? [`Frozen (no manager on record; give them an owner): ${r.frozen.join(', ')}`]
                : []),
            ].join('\n'),
          );
        }),
      ),
    ['microapp users disable alice@example.com --reason "Left the company on 2026-11-30"'],
  );

  const dev = program.command('dev').description('tools for a --dev server');
  const clock = dev.command('clock').description('the platform clock of a --dev server');
  examples(
    clock
      .command('advance <duration>')
      .description(
        'move a --dev server’s clock forward (e.g. 61d, 12h, 2w) and run the jobs that became due; refused on other servers',
      )
      .action(
        action(async (duration: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          progress(`moving the clock ${duration} forward and running due jobs`);
          const r = await ctx.client.post<{ now: string; ran: string[] }>('/api/v1/dev/clock', {
            advance: duration,
          });
          emit(
            ctx.json,
            r,
            () =>
              `The platform clock now reads ${r.now.slice(0, 16).replace('T', ' ')} UTC.\nJobs run: ${r.ran.length ? r.ran.join(', ') : 'none were due'}.`,
          );
        }),
      ),
    ['microapp dev clock advance 61d', 'microapp dev clock advance 14d --json'],
  );
}
