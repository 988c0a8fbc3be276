import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { CliError, query } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { configDir } from '../credentials.ts';
import { emit, progress } from '../output.ts';

type Checkpoint = { type: string; seq: number; head: string; at: string; keyid: string; signature: string };
type Verify =
  | { ok: true; checked: number; head: string; checkpoint: { seq: number; at: string } | null }
  | { ok: false; checked: number; broken: { seq: number; id: string | null; reason: string } };

/** Where this machine keeps the newest checkpoint it saw of a server's chain: the auditor's own copy. */
const keptFile = (server: string) =>
  join(configDir(), 'audit-checkpoints', `${new URL(server).host.replace(/[^A-Za-z0-9.-]/g, '_')}.json`);

function readCheckpoint(file: string): Checkpoint {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Checkpoint;
  } catch (e) {
    throw new CliError(`cannot read the checkpoint in ${file}: ${(e as Error).message}`, { exitCode: 2 });
  }
}

function keep(file: string, checkpoint: Checkpoint) {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(checkpoint, null, 2)}\n`, { mode: 0o600 });
}

export function registerAuditCommands(program: Command) {
  const audit = program.command('audit').description('the tamper-evident audit trail');

  examples(
    audit
      .command('verify')
      .description(
        'check the whole hash chain against the newest signed checkpoint the platform has and the one this machine kept (or --checkpoint FILE); exits 1 and names the first broken event, a rewritten chain or deleted events',
      )
      .option(
        '--checkpoint <file>',
        'a signed checkpoint you kept (from `microapp audit checkpoint` or an export)',
      )
      .action(
        action(async (flags: { checkpoint?: string }, command: Command) => {
          const ctx = ctxOf(command);
          const kept = keptFile(ctx.server);
          const file = flags.checkpoint ?? (existsSync(kept) ? kept : null);
          const brought = file ? readCheckpoint(file) : null;
          const result = brought
            ? await ctx.client.post<Verify>('/api/v1/audit/verify', { checkpoint: brought })
            : await ctx.client.get<Verify>('/api/v1/audit/verify');
          // A chain that verifies is checkpointed now, and this machine keeps the newest checkpoint: a later
          // truncation or rewrite of what it covers fails the next verify, whatever the database says.
          if (result.ok) {
            const fresh = await ctx.client.post<{ checkpoint: Checkpoint | null }>(
              '/api/v1/audit/checkpoints',
            );
            if (fresh.checkpoint && (!brought || fresh.checkpoint.seq >= brought.seq))
              keep(kept, fresh.checkpoint);
          }
          emit(ctx.json, { ...result, checkpointFile: file }, () =>
            result.ok
              ? `audit chain OK: ${result.checked} events, head ${result.head}${result.checkpoint ? `\nmatches the checkpoint signed at ${result.checkpoint.at} (${result.checkpoint.seq} events)` : ''}${file ? `; checked against ${file} too` : ''}`
              : `audit chain BROKEN at ${result.broken.id ? `event ${result.broken.id}` : 'the end'} (seq ${result.broken.seq}): ${result.broken.reason}\n${result.checked} events before it verify.`,
          );
          if (!result.ok) process.exitCode = 1;
        }),
      ),
    ['microapp audit verify', 'microapp audit verify --checkpoint kept/2026-12-01.json --json'],
  );

  examples(
    audit
      .command('checkpoint')
      .description(
        'have the platform sign a checkpoint of the chain now, and keep it (--out) to verify against later',
      )
      .option('--out <file>', "write it to this file as well as to this machine's own copy")
      .action(
        action(async (flags: { out?: string }, command: Command) => {
          const ctx = ctxOf(command);
          const { checkpoint } = await ctx.client.post<{ checkpoint: Checkpoint | null }>(
            '/api/v1/audit/checkpoints',
          );
          if (!checkpoint) throw new CliError('the audit trail is empty: there is nothing to checkpoint yet');
          keep(keptFile(ctx.server), checkpoint);
          if (flags.out) keep(flags.out, checkpoint);
          emit(
            ctx.json,
            checkpoint,
            () =>
              `checkpoint: ${checkpoint.seq} events, head ${checkpoint.head}, signed at ${checkpoint.at}${flags.out ? `\nwritten to ${flags.out}` : ''}`,
          );
        }),
      ),
    ['microapp audit checkpoint --out audit-2026-12-04.checkpoint.json'],
  );

  examples(
    audit
      .command('export')
      .description('write audit events as JSON lines (to stdout or --out)')
      .option('--since <time>', 'ISO-8601 time or date, e.g. 2026-11-01')
      .option('--out <file>', 'write to a file instead of stdout')
      .action(
        action(async (flags: { since?: string; out?: string }, command: Command) => {
          const ctx = ctxOf(command);
          let since: string | undefined;
          if (flags.since) {
            const t = Date.parse(flags.since);
            if (Number.isNaN(t))
              throw new CliError(`--since must be an ISO-8601 date or time, got "${flags.since}"`, {
                exitCode: 2,
              });
            since = new Date(t).toISOString();
          }
          const out = flags.out ? createWriteStream(flags.out, { mode: 0o600 }) : process.stdout;
          let after: number | undefined;
          let count = 0;
          for (;;) {
            const page = await ctx.client.get<{ items: { seq: number }[]; next: number | null }>(
              `/api/v1/audit/events${query({ since, after, limit: 1000 })}`,
            );
            for (const e of page.items) out.write(`${JSON.stringify(e)}\n`);
            count += page.items.length;
            if (page.next === null) break;
            after = page.next;
            progress(`${count} events`);
          }
          if (flags.out) {
            await new Promise<void>((done) => (out as ReturnType<typeof createWriteStream>).end(done));
            // Every export comes with a signed checkpoint of the chain it was taken from.
            const { checkpoint } = await ctx.client
              .post<{ checkpoint: Checkpoint | null }>('/api/v1/audit/checkpoints')
              .catch(() => ({ checkpoint: null }));
            if (checkpoint) keep(`${flags.out}.checkpoint.json`, checkpoint);
            emit(
              ctx.json,
              {
                file: flags.out,
                events: count,
                checkpoint: checkpoint ? `${flags.out}.checkpoint.json` : null,
              },
              () =>
                `wrote ${count} events to ${flags.out}${checkpoint ? `, and a signed checkpoint to ${flags.out}.checkpoint.json` : ''}`,
            );
          }
        }),
      ),
    ['microapp audit export --since 2026-11-01 --out audit.jsonl'],
  );
}
