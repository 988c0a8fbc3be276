import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { CliError, query } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { configDir, loadCredential } from '../credentials.ts';
import { emit, table } from '../output.ts';

type Commit = { commit: string; author: string; email: string; date: string; subject: string };
type Repository = {
  app: string;
  cloneUrl: string;
  host: { kind: 'github' | 'gitlab'; id: string; webUrl: string } | null;
  source: string;
  archived: boolean;
  head: string | null;
  commits: Commit[];
  canPush: boolean;
};
type Change = {
  app: string;
  number: number;
  title: string;
  branch: string;
  state: string;
  head: string;
  openedBy: string;
  checks: { name: string; state: string; detail: string }[];
  rule: string;
  reviews: {
    missing: { specialty: string | null }[];
    given: { reviewer: string; decision: string; comment: string | null; head: string }[];
  };
  hostChange: { number: number; url: string } | null;
  confirmation: {
    person: string;
    agent: string;
    checkpoint: string | null;
    state: string;
    note: string | null;
  } | null;
  problem: string | null;
  merged: { commit: string; by: string } | null;
  release: { state: string; version: string | null; error: string | null } | null;
  commits?: Commit[];
  diff?: { files: { path: string; added: number; removed: number }[]; patch: string; truncated: boolean };
  manifest?: { changed: boolean; before: string | null; after: string | null };
};

const short = (sha: string) => sha.slice(0, 12);
const hostWord = (kind: 'github' | 'gitlab') => (kind === 'github' ? 'GitHub' : 'GitLab');

/** Where a change stands, in one line a person reads. */
function standing(c: Change): string {
  if (c.state === 'closed') return 'closed';
  if (c.state === 'merged') {
    if (!c.release) return c.problem ? `merged; not shipped: ${c.problem}` : 'merged';
    return c.release.state === 'passed'
      ? `merged and live (${c.release.version})`
      : c.release.state === 'failed'
        ? `merged; its build failed: ${c.release.error}`
        : `merged; building ${c.release.version ?? ''}`.trim();
  }
  const check = c.checks[0];
  if (check?.state === 'failed') return `checks failed: ${check.detail}`;
  if (check?.state === 'pending') return 'checks running';
  if (c.reviews.missing.length)
    return `waiting for ${c.reviews.missing.map((m) => (m.specialty ? `a ${m.specialty} reviewer` : 'a reviewer')).join(' and ')}`;
  const waiting = confirmationLine(c);
  if (waiting) return waiting;
  return c.problem ?? 'ready';
}

/** What an agent's change waits for from its person, or null when nothing (or a person pushed it). */
function confirmationLine(c: Change): string | null {
  const k = c.confirmation;
  if (!k || k.state === 'confirmed') return null;
  if (k.state === 'refused')
    return `${k.person} refused to merge what ${k.agent} pushed${k.note ? `: ${k.note}` : ''}; push again or close it`;
  if (k.state === 'expired')
    return `${k.person} did not confirm what ${k.agent} pushed in time; push the branch again to ask again`;
  return `waiting for ${k.person} to confirm what ${k.agent} pushed (microapp agents approve ${k.checkpoint ?? '…'})`;
}

/** The git credential helper: git asks it for the password of a platform URL, and it answers with the token. */
export function gitCredential(operation: string, input: string, server: string, env = process.env): string {
  if (operation !== 'get') return '';
  const fields = Object.fromEntries(
    input
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  if (!fields.protocol || !fields.host) return '';
  const origin = `${fields.protocol}://${fields.host}`;
  // Only for the platform the token belongs to: a token is never handed to another host.
  if (origin !== server) return '';
  const token = env.MICROAPP_TOKEN ?? loadCredential(origin)?.token;
  return token ? `username=token\npassword=${token}\n` : '';
}

/** An app's repository on the platform, its change requests, and the GitOps repository. */
export function registerRepoCommands(program: Command) {
  const repo = program
    .command('repo')
    .description("an app's repository on the platform: where to clone it and what it holds");

  examples(
    repo
      .command('show <app>')
      .description('the clone URL and the recent commits of main')
      .action(
        action(async (name: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const r = await ctx.client.get<Repository>(`/api/v1/apps/${encodeURIComponent(name)}/repository`);
          emit(ctx.json, r, () =>
            [
              `${r.app}: ${r.cloneUrl}${r.archived ? ' (decommissioned: read-only)' : ''}`,
              r.host
                ? `It lives at ${hostWord(r.host.kind)}: ${r.host.webUrl}. Open a pull request into main there; the platform checks it, and merges it by the tier's rule.`
                : `Made from ${r.source}. ${r.canPush ? 'You can push branches; each one becomes a change request.' : 'You can read it; only its owner pushes.'}`,
              '',
              table(
                ['COMMIT', 'WHEN', 'WHO', 'WHAT'],
                r.commits.map((c) => [
                  short(c.commit),
                  c.date.slice(0, 16).replace('T', ' '),
                  c.email,
                  c.subject,
                ]),
              ),
              '',
              r.host
                ? `Clone it from ${hostWord(r.host.kind)} with your own credentials there: git clone ${r.cloneUrl}`
                : `Clone it with \`microapp repo clone ${r.app}\` (git then signs in with your microapp login).`,
            ].join('\n'),
          );
        }),
      ),
    ['microapp repo show expense-claims', 'microapp repo show expense-claims --json'],
  );

  examples(
    repo
      .command('clone <app> [dir]')
      .description(
        'clone the repository with git, which then signs in with your microapp login for pulls and pushes',
      )
      .action(
        action(async (name: string, dir: string | undefined, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const r = await ctx.client.get<Repository>(`/api/v1/apps/${encodeURIComponent(name)}/repository`);
          // Your microapp login is for the platform only: a repository at GitHub or GitLab takes your credentials there.
          if (r.host)
            throw new CliError(
              `${name}'s code lives at ${hostWord(r.host.kind)} (${r.host.webUrl}): clone it from there with your own credentials (git clone ${r.cloneUrl}), and open a pull request into main`,
            );
          // The helper reads the same login as this command, wherever git later runs it from.
          const helper = `!MICROAPP_CONFIG_DIR='${configDir().replaceAll("'", "'\\''")}' "${process.execPath}" "${process.argv[1]}" --server "${ctx.server}" git-credential`;
          const result = spawnSync(
            'git',
            [
              'clone',
              '-c',
              `credential.${ctx.server}.helper=`,
              '-c',
              `credential.${ctx.server}.helper=${helper}`,
              r.cloneUrl,
              dir ?? name,
            ],
            {
              stdio: ctx.json ? ['ignore', 'ignore', 'pipe'] : 'inherit',
              env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
            },
          );
          if (result.error)
            throw new CliError('git is not installed: install it (Debian package git) and run this again');
          if (result.status !== 0)
            throw new CliError(`git clone failed (exit ${result.status}); see its message above`);
          emit(
            ctx.json,
            { app: name, dir: dir ?? name, cloneUrl: r.cloneUrl },
            () =>
              `Cloned ${name} into ${dir ?? name}. Change it, then \`git push origin HEAD:my-change\`: the platform opens a change request and runs the pipeline (\`microapp changes list ${name}\`).`,
          );
        }),
      ),
    ['microapp repo clone expense-claims', 'microapp repo clone expense-claims ~/src/expense-claims'],
  );

  program
    .command('git-credential <operation>', { hidden: true })
    .description('git credential helper (set up by `microapp repo clone`)')
    .action(async (operation: string, _flags: unknown, command: Command) => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      const server = ctxOf(command).server;
      process.stdout.write(gitCredential(operation, Buffer.concat(chunks).toString('utf8'), server));
    });

  const changes = program
    .command('changes')
    .description(
      "change requests: branches pushed to an app's repository, checked by the pipeline, merged by the tier's rule",
    );

  examples(
    changes
      .command('list <app>')
      .description('the change requests of an app, newest first, with where each stands')
      .option('--state <state>', 'open, merged or closed')
      .action(
        action(async (name: string, flags: { state?: string }, command: Command) => {
          const ctx = ctxOf(command);
          const { items } = await ctx.client.get<{ items: Change[] }>(
            `/api/v1/apps/${encodeURIComponent(name)}/changes${query({ state: flags.state })}`,
          );
          emit(ctx.json, items, () =>
            items.length === 0
              ? `No change requests for ${name}. Push a branch to its repository (\`microapp repo clone ${name}\`) to open one.`
              : table(
                  ['#', 'TITLE', 'BRANCH', 'BY', 'STANDING'],
                  items.map((c) => [String(c.number), c.title, c.branch, c.openedBy, standing(c)]),
                ),
          );
        }),
      ),
    ['microapp changes list expense-claims', 'microapp changes list expense-claims --state open --json'],
  );

  examples(
    changes
      .command('show <app> <number>')
      .description(
        'one change request: its checks, the rule, reviews, commits, and the diff (code and manifest)',
      )
      .option('--no-diff', 'leave out the patch')
      .action(
        action(async (name: string, number: string, flags: { diff: boolean }, command: Command) => {
          const ctx = ctxOf(command);
          const c = await ctx.client.get<Change>(
            `/api/v1/apps/${encodeURIComponent(name)}/changes/${encodeURIComponent(number)}`,
          );
          emit(ctx.json, c, () =>
            [
              `${c.app} #${c.number}: ${c.title}`,
              `  branch ${c.branch} at ${short(c.head)}, by ${c.openedBy}: ${standing(c)}`,
              ...(c.hostChange ? [`  pull request #${c.hostChange.number}: ${c.hostChange.url}`] : []),
              `  rule: ${c.rule}${c.confirmation ? `, and ${c.confirmation.person} confirms what ${c.confirmation.agent} pushed (${c.confirmation.state})` : ''}`,
              ...c.checks.map((k) => `  check ${k.name}: ${k.state} (${k.detail})`),
              ...c.reviews.given.map(
                (g) =>
                  `  ${g.reviewer} ${g.decision.replace('_', ' ')} ${short(g.head)}${g.head === c.head ? '' : ' (an earlier commit)'}${g.comment ? `: ${g.comment}` : ''}`,
              ),
              '',
              ...(c.commits ?? []).map((k) => `  ${short(k.commit)} ${k.subject} (${k.email})`),
              '',
              c.manifest?.changed
                ? 'microapp.yaml changes: the pipeline checks it against the registered answers.'
                : 'microapp.yaml is unchanged.',
              ...(c.diff ? c.diff.files.map((f) => `  ${f.path} +${f.added} -${f.removed}`) : []),
              ...(flags.diff && c.diff
                ? ['', c.diff.patch, c.diff.truncated ? '… (cut: see it in the console)' : '']
                : []),
            ].join('\n'),
          );
        }),
      ),
    ['microapp changes show expense-claims 3', 'microapp changes show expense-claims 3 --no-diff'],
  );

  for (const [verb, decision] of [
    ['approve', 'approved'],
    ['request-changes', 'changes_requested'],
  ] as const)
    examples(
      changes
        .command(`${verb} <app> <number>`)
        .description(
          verb === 'approve'
            ? "approve the change as you read it (its head commit); the approval that completes the tier's rule merges and ships it"
            : 'ask the author for changes, with a comment they see',
        )
        .option(
          '--comment <text>',
          verb === 'approve' ? 'a note for the record' : 'what to change (required)',
        )
        .action(
          action(async (name: string, number: string, flags: { comment?: string }, command: Command) => {
            const ctx = ctxOf(command);
            if (verb === 'request-changes' && !flags.comment)
              throw new CliError('say what to change: --comment "…"', { exitCode: 2 });
            const path = `/api/v1/apps/${encodeURIComponent(name)}/changes/${encodeURIComponent(number)}`;
            const before = await ctx.client.get<Change>(path);
            const c = await ctx.client.post<Change>(`${path}/reviews`, {
              decision,
              head: before.head,
              ...(flags.comment ? { comment: flags.comment } : {}),
            });
            emit(ctx.json, c, () => `${c.app} #${c.number}: ${standing(c)}`);
          }),
        ),
      [
        `microapp changes ${verb} expense-claims 3${verb === 'approve' ? '' : ' --comment "keep the amount optional"'}`,
      ],
    );

  examples(
    changes
      .command('close <app> <number>')
      .description('close a change request without merging it')
      .action(
        action(async (name: string, number: string, _flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const c = await ctx.client.post<Change>(
            `/api/v1/apps/${encodeURIComponent(name)}/changes/${encodeURIComponent(number)}/close`,
            {},
          );
          emit(ctx.json, c, () => `${c.app} #${c.number} is closed.`);
        }),
      ),
    ['microapp changes close expense-claims 3'],
  );

  const gitops = program.command('gitops').description('the GitOps repository Argo CD or Flux follows');
  examples(
    gitops
      .command('show')
      .description(
        'its clone URL, main’s head, and the deploys committed to it (admins, auditors, reviewers)',
      )
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const g = await ctx.client.get<{
            cloneUrl: string;
            branch: string;
            head: string | null;
            changes: { number: number; app: string; title: string; by: string; at: string }[];
          }>('/api/v1/gitops');
          emit(ctx.json, g, () =>
            [
              `${g.cloneUrl} (branch ${g.branch}, at ${g.head ? short(g.head) : 'nothing yet'})`,
              'Point Argo CD or Flux at it with an API token of a reviewer, auditor or admin as the password.',
              '',
              g.changes.length
                ? table(
                    ['#', 'APP', 'WHAT', 'BY', 'WHEN'],
                    g.changes.map((c) => [String(c.number), c.app, c.title, c.by, c.at.slice(0, 16)]),
                  )
                : 'No deploy has been committed yet: `microapp deploy APP@VERSION --driver kubernetes` commits one.',
            ].join('\n'),
          );
        }),
      ),
    ['microapp gitops show', 'microapp gitops show --json'],
  );
}
