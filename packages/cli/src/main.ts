import { Command } from 'commander';
import { version } from '../../server/src/version.ts';
import { registerAdvisoryCommands } from './commands/advisories.ts';
import { registerAgentCommands } from './commands/agents.ts';
import { registerApprovalCommands } from './commands/approvals.ts';
import { registerAppCommands } from './commands/apps.ts';
import { registerArtifactCommands } from './commands/artifacts.ts';
import { registerAuditCommands } from './commands/audit.ts';
import { registerAuthCommands } from './commands/auth.ts';
import { registerBuildCommands } from './commands/build.ts';
import { registerCiCommands } from './commands/ci.ts';
import { registerConnectorCommands } from './commands/connectors.ts';
import { registerDeployCommands } from './commands/deploy.ts';
import { registerInitCommands } from './commands/init.ts';
import { registerLifecycleCommands } from './commands/lifecycle.ts';
import { registerLogsCommands } from './commands/logs.ts';
import { registerPolicyCommands } from './commands/policy.ts';
import { registerRepoCommands } from './commands/repos.ts';
import { registerSbomCommands } from './commands/sbom.ts';
import { registerSecretCommands } from './commands/secrets.ts';
import { registerServerCommands } from './commands/server.ts';
import { registerTokenCommands } from './commands/tokens.ts';

const program = new Command('microapp')
  .description('Ship small single-purpose apps, governed: register, approve, build, run, retire.')
  .version(version)
  .option('--server <url>', 'platform URL (env MICROAPP_SERVER, default http://localhost:8080)')
  .option('--json', 'machine-readable output')
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText(
    'after',
    `
Getting started:
  $ microapp server --dev                       # in one terminal
  $ microapp login --dev-user alice@example.com
  $ microapp register --file microapp.yaml
  $ microapp apps show my-app`,
  );

// Set before the subcommands exist, which copy it: usage mistakes exit 2; --help and --version exit 0.
program.exitOverride((error) => {
  process.exit(error.exitCode === 0 ? 0 : 2);
});

registerServerCommands(program);
registerAuthCommands(program);
registerAppCommands(program);
registerApprovalCommands(program);
registerAuditCommands(program);
registerTokenCommands(program);
registerAgentCommands(program);
registerSecretCommands(program);
registerPolicyCommands(program);
registerInitCommands(program);
registerCiCommands(program);
registerBuildCommands(program);
registerConnectorCommands(program);
registerDeployCommands(program);
registerLogsCommands(program);
registerAdvisoryCommands(program);
registerArtifactCommands(program);
registerSbomCommands(program);
registerLifecycleCommands(program);
registerRepoCommands(program);

await program.parseAsync(process.argv);
