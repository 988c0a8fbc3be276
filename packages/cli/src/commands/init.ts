import type { Command } from 'commander';
import { action, ctxOf, examples } from '../context.ts';
import { loadCredential } from '../credentials.ts';
import { emit, table } from '../output.ts';

export function registerInitCommands(program: Command) {
  const templates = program.command('templates').description('vetted app templates');
  examples(
    templates
      .command('list')
      .description('the templates you can start from, with their versions')
      .action(
        action(async (_flags: unknown, command: Command) => {
          const ctx = ctxOf(command);
          // The templates (and the YAML parser they need) load only for the commands that use them.
          const { listTemplates } = await import('../scaffold.ts');
          const list = listTemplates();
          emit(ctx.json, list, () =>
            table(
              ['NAME', 'VERSION', 'WHAT IT IS'],
              list.map((t) => [t.name, t.version, t.description]),
            ),
          );
        }),
      ),
    ['microapp templates list'],
  );

  examples(
    program
      .command('init <dir>')
      .description('create a new app from a vetted template, with its tests and CI workflows')
      .requiredOption('-t, --template <name>', 'form, connector, dashboard or finance-reconciliation')
      .option('--name <name>', 'app name (DNS label); defaults to the folder name')
      .option('--owner <email>', 'the accountable owner; defaults to the signed-in user')
      .option('--department <department>', 'the audience department')
      .action(
        action(
          async (
            dir: string,
            flags: { template: string; name?: string; owner?: string; department?: string },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const owner = flags.owner ?? loadCredential(ctx.server)?.email;
            const { scaffold } = await import('../scaffold.ts');
            const result = scaffold({
              template: flags.template,
              dir,
              name: flags.name,
              owner,
              department: flags.department,
            });
            emit(ctx.json, result, () =>
              [
                `Created ${result.name} from the ${result.template.name} template (v${result.template.version}) in ${result.dir}`,
                '',
                'Next:',
                `  cd ${dir}`,
                "  npm test                 # the app's own tests",
                '  microapp register        # tier, reasons and who needs to approve',
                '  microapp ci              # build, scan and package',
              ].join('\n'),
            );
          },
        ),
      ),
    [
      'microapp init recon --template finance-reconciliation --department finance',
      'microapp init lunch-poll -t form --owner dave@example.com',
    ],
  );
}
