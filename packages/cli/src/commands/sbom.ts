import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../client.ts';
import { action, examples } from '../context.ts';
import { emit } from '../output.ts';

export function registerSbomCommands(program: Command) {
  examples(
    program
      .command('sbom')
      .description(
        "write the app's software bill of materials (CycloneDX 1.6 JSON) from its package-lock.json, as `microapp ci` does, without the other steps",
      )
      .option('-C, --dir <dir>', 'the app folder (it must hold package-lock.json)', '.')
      .option('-o, --out <file>', 'where to write the SBOM (default: standard output)')
      .option('--spdx', 'write SPDX 2.3 JSON instead of CycloneDX')
      .action(
        action(async (flags: { dir: string; out?: string; spdx?: boolean }, command: Command) => {
          const json = Boolean(command.optsWithGlobals<{ json?: boolean }>().json);
          const { buildSbom } = await import('../pipeline/sbom.ts');
          let sbom: Awaited<ReturnType<typeof buildSbom>>;
          try {
            sbom = await buildSbom(resolve(flags.dir), { installed: [resolve(flags.dir)] });
          } catch (error) {
            const e = error as NodeJS.ErrnoException;
            throw new CliError(
              e.code === 'ENOENT'
                ? `no package-lock.json in ${resolve(flags.dir)}: run \`npm install\` there first, or pass --dir`
                : `the SBOM could not be made: ${e.message}`,
            );
          }
          let text = sbom.json;
          if (flags.spdx) {
            const { cyclonedxToSpdx } = await import('../pipeline/spdx.ts');
            text = `${JSON.stringify(cyclonedxToSpdx(JSON.parse(sbom.json)), null, 2)}\n`;
          }
          if (!flags.out) {
            process.stdout.write(text);
            return;
          }
          writeFileSync(flags.out, text);
          emit(
            json,
            {
              file: resolve(flags.out),
              format: flags.spdx ? 'spdx-2.3' : 'cyclonedx-1.6',
              packages: sbom.packages.length,
            },
            () => `wrote the SBOM of ${sbom.packages.length} packages to ${flags.out}`,
          );
        }),
      ),
    [
      'microapp sbom > sbom.cdx.json',
      'microapp sbom -C my-app -o my-app.cdx.json',
      'microapp sbom --spdx -o sbom.spdx.json',
    ],
  );
}
