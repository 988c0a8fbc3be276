import type { Command } from 'commander';
import { CliError, type Client, createClient, serverUrl } from './client.ts';
import { terminalSafe } from './output.ts';

/** What every command gets: the output mode, the server and a client for it. */
export type Ctx = { json: boolean; server: string; client: Client };

export function ctxOf(command: Command): Ctx {
  const opts = command.optsWithGlobals<{ json?: boolean; server?: string }>();
  const server = serverUrl(opts.server);
  return { json: Boolean(opts.json), server, client: createClient({ server }) };
}

/** Wraps an action so failures print one clear message (or a JSON problem with --json) and set the exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (error) {
      const command = args.at(-1) as Command;
      const json = Boolean(command?.optsWithGlobals?.().json);
      const cli = error instanceof CliError ? error : new CliError((error as Error).message);
      if (json)
        process.stdout.write(
          `${JSON.stringify({ error: cli.message, problem: cli.problem ?? null }, null, 2)}\n`,
        );
      else process.stderr.write(`error: ${terminalSafe(cli.message)}\n`);
      process.exitCode = cli.exitCode;
    }
  };
}

/** Appends an example block to a command's --help. */
export function examples(command: Command, lines: string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}
