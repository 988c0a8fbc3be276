import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, query } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, table } from '../output.ts';

/** The parts of an app the CLI prints. */
export type AppView = {
  name: string;
  owner: string;
  department: string | null;
  state: string;
  tier: string;
  revision: number;
  manifest: Record<string, unknown>;
  assessment: {
    score: number;
    tier: string;
    rulesVersion: string;
    factors: { id: string; points: number; explanation: string }[];
  };
  approval: {
    required: { specialty: string | null }[];
    missing: { specialty: string | null }[];
    reviews: {
      reviewer: string;
      decision: string;
      specialty: string | null;
      comment: string | null;
      at: string;
      revision: number;
    }[];
  };
  scorecard?: { passed: number; total: number; checks: { id: string; ok: boolean; detail: string }[] };
};

const slot = (s: { specialty: string | null }) => `${s.specialty ?? 'any'} review`;

/** The human view of one app: tier with its factors, and where approval stands. */
export function describeApp(app: AppView): string {
  const lines = [
    `${app.name}  (${app.state.replace('_', ' ')})`,
    `owner:      ${app.owner}   department: ${app.department ?? '-'}   revision: ${app.revision}`,
    `risk:       ${app.tier} (score ${app.assessment.score}/100, rules ${app.assessment.rulesVersion})`,
    ...app.assessment.factors.map((f) => `  +${String(f.points).padStart(2)}  ${f.explanation}`),
  ];
  if (app.approval.required.length === 0)
    lines.push('approval:   none needed (low risk: approved by policy)');
  else lines.push(`approval:   needs ${app.approval.required.map(slot).join(' and ')}`);
  if (app.state === 'pending_review' && app.approval.missing.length > 0)
    lines.push(`waiting for: ${app.approval.missing.map(slot).join(' and ')}`);
  for (const r of app.approval.reviews.filter((x) => x.revision === app.revision))
    lines.push(
      `  ${r.at.slice(0, 16).replace('T', ' ')}  ${r.decision}  by ${r.reviewer}${r.specialty ? ` (${r.specialty})` : ''}${r.comment ? `: ${r.comment}` : ''}`,
    );
  if (app.scorecard) {
    lines.push(`scorecard:  ${app.scorecard.passed}/${app.scorecard.total} checks pass`);
    for (const c of app.scorecard.checks)
      lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.id.replace(/_/g, ' ')}: ${c.detail}`);
  }
  return lines.join('\n');
}

async function readManifest(file: string): Promise<{ body: string; contentType: string }> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CliError(
      `cannot read ${file}; run this in your app's folder or pass --file path/to/microapp.yaml`,
      { exitCode: 2 },
    );
  }
  if (/\.json$/i.test(file)) return { body: text, contentType: 'application/json' };
  const { parseYaml, YAMLParseError } = await import('../yaml.ts');
  try {
    // Parse locally first so a YAML mistake is reported with its line before anything is sent.
    parseYaml(text, { uniqueKeys: true, schema: 'core' });
  } catch (error) {
    const pos =
      error instanceof YAMLParseError && error.linePos
        ? `${file}:${error.linePos[0].line}:${error.linePos[0].col}: `
        : `${file}: `;
    throw new CliError(
      `${pos}${(error as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
      { exitCode: 2 },
    );
  }
  return { body: text, contentType: 'application/yaml' };
}

export function registerAppCommands(program: Command) {
  examples(
    program
      .command('register')
      .description(
        'register your app from microapp.yaml (or re-register it after a change); prints its risk tier and why',
      )
      .option('-f, --file <file>', 'the manifest', 'microapp.yaml')
      .action(
        action(async (flags: { file: string }, command: Command) => {
          const ctx = ctxOf(command);
          const { body, contentType } = await readManifest(flags.file);
          const res = await ctx.client.post<{ outcome: string; reReview: boolean; app: AppView }>(
            '/api/v1/apps',
            body,
            { contentType },
          );
          emit(ctx.json, res, () => {
            const head =
              res.outcome === 'created'
                ? `Registered ${res.app.name}.`
                : res.outcome === 'unchanged'
                  ? `${res.app.name} is already registered with this manifest.`
                  : `Updated ${res.app.name} to revision ${res.app.revision}${res.reReview ? '; the change needs a new review' : ''}.`;
            return `${head}\n\n${describeApp(res.app)}`;
          });
        }),
      ),
    ['microapp register', 'microapp register --file apps/recon/microapp.yaml --json'],
  );

  const apps = program.command('apps').description('the app catalog');
  examples(
    apps
      .command('list')
      .description('list and search apps you can see')
      .option('-q, --query <text>', 'search names and manifests')
      .option('--owner <email>')
      .option('--department <department>')
      .option('--tier <tier>', 'low, medium or high')
      .option('--state <state>', 'pending_review, approved, rejected or changes_requested')
      .option('--data-class <class>', 'e.g. pii')
      .option('--limit <n>', 'page size (1-200)', (v) => Number(v), 50)
      .option('--cursor <cursor>', 'continue from a previous page')
      .option(
        '--scorecard <passing|failing>',
        'only apps whose governance scorecard passes every check, or fails one',
      )
      .option('--all', 'follow every page')
      .action(
        action(async (flags: Record<string, string | number | boolean | undefined>, command: Command) => {
          const ctx = ctxOf(command);
          const items: AppView[] = [];
          let cursor = flags.cursor as string | undefined;
          for (;;) {
            const page = await ctx.client.get<{ items: AppView[]; nextCursor: string | null }>(
              `/api/v1/apps${query({
                q: flags.query as string,
                owner: flags.owner as string,
                department: flags.department as string,
                tier: flags.tier as string,
                state: flags.state as string,
                dataClass: flags.dataClass as string,
                scorecard: flags.scorecard as string,
                limit: flags.limit as number,
                cursor,
              })}`,
            );
            items.push(...page.items);
            cursor = page.nextCursor ?? undefined;
            if (!flags.all || !cursor) break;
          }
          emit(
            ctx.json,
            { items, nextCursor: cursor ?? null },
            () =>
              table(
                ['NAME', 'TIER', 'STATE', 'OWNER', 'DEPARTMENT', 'DATA', 'SCORECARD'],
                items.map((a) => [
                  a.name,
                  a.tier,
                  a.state,
                  a.owner,
                  a.department ?? '-',
                  ((a.manifest.dataClasses as string[]) ?? []).join(','),
                  a.scorecard ? `${a.scorecard.passed}/${a.scorecard.total}` : '-',
                ]),
              ) + (cursor ? `\n(more: --cursor ${cursor})` : ''),
          );
        }),
      ),
    [
      'microapp apps list --tier high --state pending_review',
      'microapp apps list --data-class pii --all --json',
      'microapp apps list --scorecard failing',
    ],
  );

  examples(
    apps
      .command('show <name>')
      .description('one app with its risk factors and approval status')
      .action(
        action(async (name: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const app = await ctx.client.get<AppView>(`/api/v1/apps/${encodeURIComponent(name)}`);
          const { items: versions } = await ctx.client.get<{
            items: {
              version: string;
              digest: string;
              publishedAt: string;
              scan: { passed: boolean; findings: unknown[] };
            }[];
          }>(`/api/v1/apps/${encodeURIComponent(name)}/versions`);
          emit(ctx.json, { ...app, versions }, () =>
            [
              describeApp(app),
              ...(versions.length
                ? [
                    'versions:',
                    ...versions.map(
                      (v) =>
                        `  ${v.version}  ${v.digest}  ${v.publishedAt.slice(0, 16).replace('T', ' ')}  scan ${v.scan.passed ? 'passed' : 'failed'} (${v.scan.findings.length} findings)`,
                    ),
                  ]
                : ['versions:   none published yet']),
            ].join('\n'),
          );
        }),
      ),
    ['microapp apps show bank-reconciliation'],
  );

  examples(
    apps
      .command('usage <name>')
      .description('how much an app is used through the gateway: requests, users, errors, last use')
      .option('--days <n>', 'how many days back to count (1-366)', '30')
      .action(
        action(async (name: string, flags: { days: string }, command: Command) => {
          const ctx = ctxOf(command);
          const days = Number(flags.days);
          if (!Number.isInteger(days) || days < 1 || days > 366)
            throw new CliError(`--days must be a whole number from 1 to 366, not ${flags.days}`, {
              exitCode: 2,
            });
          const u = await ctx.client.get<UsageView>(
            `/api/v1/apps/${encodeURIComponent(name)}/usage${query({ days })}`,
          );
          emit(ctx.json, u, () =>
            [
              `${u.app}, last ${u.days} days`,
              `last used:  ${u.lastUsedAt ? u.lastUsedAt.slice(0, 16).replace('T', ' ') : 'never'}`,
              `requests:   ${u.requests} from ${u.users} ${u.users === 1 ? 'person' : 'people'}, ${u.serverErrors} server errors`,
              `latency:    ${u.averageLatencyMs === null ? '-' : `${u.averageLatencyMs} ms on average`}`,
              `traffic:    ${u.bytesIn} bytes in, ${u.bytesOut} bytes out`,
              ...(u.byDay.length
                ? [
                    '',
                    table(
                      ['day', 'requests', 'people'],
                      u.byDay.map((d) => [d.day, String(d.requests), String(d.users)]),
                    ),
                  ]
                : []),
            ].join('\n'),
          );
        }),
      ),
    ['microapp apps usage bank-reconciliation', 'microapp apps usage bank-reconciliation --days 7 --json'],
  );
}

type UsageView = {
  app: string;
  days: number;
  lastUsedAt: string | null;
  requests: number;
  serverErrors: number;
  users: number;
  bytesIn: number;
  bytesOut: number;
  averageLatencyMs: number | null;
  byDay: { day: string; requests: number; users: number }[];
};
