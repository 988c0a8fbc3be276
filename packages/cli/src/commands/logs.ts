import { type Command, Option } from 'commander';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { terminalSafe } from '../output.ts';

type LogPage = {
  env: string;
  running: boolean;
  version: string | null;
  items: { seq: number; at: string; stream: string; version: string; line: string }[];
  next: number | null;
};

export function registerLogsCommands(program: Command) {
  examples(
    program
      .command('logs <app>')
      .description(
        'what an app printed (owner or admin), its secrets blanked out before they were stored; --follow keeps printing new lines until Ctrl-C',
      )
      .addOption(new Option('--env <env>', 'which environment').choices(['live', 'preview']).default('live'))
      .option('-n, --lines <n>', 'how many of the newest lines to show first', '100')
      .option('-f, --follow', 'keep printing new lines as the app prints them')
      .action(
        action(
          async (name: string, flags: { env: string; lines: string; follow?: boolean }, command: Command) => {
            const ctx = ctxOf(command);
            const lines = Number(flags.lines);
            if (!Number.isInteger(lines) || lines < 1 || lines > 5000)
              throw new CliError(`--lines is a number from 1 to 5000, got "${flags.lines}"`, { exitCode: 2 });
            const path = `/api/v1/apps/${encodeURIComponent(name)}/logs?env=${flags.env}`;
            const show = (page: LogPage) => {
              for (const i of page.items)
                if (ctx.json) process.stdout.write(`${JSON.stringify(i)}\n`);
                else {
                  const text = `${i.at.slice(0, 19).replace('T', ' ')} ${terminalSafe(i.line)}\n`;
                  (i.stream === 'stderr' ? process.stderr : process.stdout).write(text);
                }
            };
            let page = await ctx.client.get<LogPage>(`${path}&limit=${lines}`);
            if (!flags.follow && !ctx.json && page.items.length === 0)
              process.stderr.write(
                page.running
                  ? `${name} (${flags.env}) has printed nothing yet.\n`
                  : `${name} has no logs in ${flags.env}: it has not run there, or its lines are past their retention.\n`,
              );
            show(page);
            if (!flags.follow) return;
            // JSON Lines with --json, so a script can follow too; stops on Ctrl-C.
            let stopped = false;
            process.once('SIGINT', () => {
              stopped = true;
            });
            let after = page.next ?? 0;
            while (!stopped) {
              await new Promise((r) => setTimeout(r, 1000));
              page = await ctx.client.get<LogPage>(`${path}&after=${after}&limit=1000`);
              show(page);
              after = page.next ?? after;
            }
          },
        ),
      ),
    ['microapp logs recon', 'microapp logs recon --env preview -n 20', 'microapp logs recon --follow'],
  );
}
