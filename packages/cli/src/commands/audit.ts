import { createWriteStream } from 'node:fs';
import type { Command } from 'commander';
import { CliError, query } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { emit, progress } from '../output.ts';

type Verify =
  | { ok: true; checked: number; head: string }
  | { ok: false; checked: number; broken: { seq: number; id: string; reason: string } };

export function registerAuditCommands(program: Command) {
  const audit = program.command('audit').description('the tamper-evident audit trail');

  examples(
    audit
      .command('verify')
      .description('check the whole hash chain; exits 1 and names the first broken event if any')
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          const result = await ctx.client.get<Verify>('/api/v1/audit/verify');
          emit(ctx.json, result, () =>
            result.ok
              ? `audit chain OK: ${result.checked} events, head ${result.head}`
              : `audit chain BROKEN at event ${result.broken.id} (seq ${result.broken.seq}): ${result.broken.reason}\n${result.checked} events before it verify.`,
          );
          if (!result.ok) process.exitCode = 1;
        }),
      ),
    ['microapp audit verify', 'microapp audit verify --json'],
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
            emit(ctx.json, { file: flags.out, events: count }, () => `wrote ${count} events to ${flags.out}`);
          }
        }),
      ),
    ['microapp audit export --since 2026-11-01 --out audit.jsonl'],
  );
}
