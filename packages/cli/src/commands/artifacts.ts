import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../client.ts';
import { action, ctxOf, examples } from '../context.ts';
import { loadCredential } from '../credentials.ts';
import { emit } from '../output.ts';

type VersionView = {
  version: string;
  digest: string;
  bundles: Record<string, unknown>;
  sbom: unknown;
  provenance: unknown;
};

export function registerArtifactCommands(program: Command) {
  const artifacts = program.command('artifacts').description('signed, published app versions');
  examples(
    artifacts
      .command('pull <app>')
      .description(
        'download a version: artifact, its Sigstore bundles, SBOM and provenance (APP or APP@VERSION; latest by default)',
      )
      .requiredOption('-o, --out <dir>', 'where to write the files')
      .action(
        action(async (ref: string, flags: { out: string }, command: Command) => {
          const ctx = ctxOf(command);
          const [name, wanted] = ref.split('@') as [string, string | undefined];
          let version = wanted;
          if (!version) {
            const { items } = await ctx.client.get<{ items: { version: string }[] }>(
              `/api/v1/apps/${encodeURIComponent(name)}/versions`,
            );
            if (items.length === 0)
              throw new CliError(`${name} has no published version yet; run \`microapp ci\``);
            version = items[0]!.version;
          }
          const v = await ctx.client.get<VersionView>(
            `/api/v1/apps/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`,
          );
          const token = process.env.MICROAPP_TOKEN ?? loadCredential(ctx.server)?.token;
          const res = await fetch(
            `${ctx.server}/api/v1/apps/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/artifact`,
            {
              headers: { authorization: `Bearer ${token}` },
            },
          );
          if (!res.ok) throw new CliError(`download failed: ${res.status}`);
          mkdirSync(flags.out, { recursive: true });
          const file = join(flags.out, `${name}-${version}.tar.gz`);
          writeFileSync(file, Buffer.from(await res.arrayBuffer()));
          for (const [kind, bundle] of Object.entries(v.bundles))
            writeFileSync(join(flags.out, `${kind}.sigstore.json`), `${JSON.stringify(bundle, null, 2)}\n`);
          writeFileSync(join(flags.out, 'sbom.cdx.json'), `${JSON.stringify(v.sbom, null, 2)}\n`);
          writeFileSync(join(flags.out, 'provenance.json'), `${JSON.stringify(v.provenance, null, 2)}\n`);
          emit(
            ctx.json,
            { file, version, digest: v.digest, out: flags.out },
            () => `Pulled ${name}@${version} (${v.digest}) into ${flags.out}`,
          );
        }),
      ),
    ['microapp artifacts pull recon@1.0.0 --out ./recon-1.0.0'],
  );

  examples(
    program
      .command('verify <artifact>')
      .description(
        'check an artifact offline: its signature, provenance (subject and builder) and attestations, with the public key only',
      )
      .requiredOption('--key <file>', 'the platform public key (PEM), from /api/v1/keys/signing.pub')
      .option('--bundles <dir>', 'folder with artifact.sigstore.json and the attestation bundles', '.')
      .option('--builder <id>', 'require this builder id in the provenance')
      .action(
        action(
          async (
            file: string,
            flags: { key: string; bundles: string; builder?: string },
            command: Command,
          ) => {
            const ctx = ctxOf(command);
            const read = (f: string) => {
              try {
                return readFileSync(f);
              } catch {
                return null;
              }
            };
            const artifact = read(file);
            if (!artifact) throw new CliError(`cannot read ${file}`, { exitCode: 2 });
            const key = read(flags.key);
            if (!key) throw new CliError(`cannot read the public key ${flags.key}`, { exitCode: 2 });
            const bundle = (kind: string) => {
              const b = read(join(flags.bundles, `${kind}.sigstore.json`));
              return b ? (JSON.parse(b.toString('utf8')) as unknown) : undefined;
            };
            const main = bundle('artifact');
            if (!main) throw new CliError(`no artifact.sigstore.json in ${flags.bundles}`, { exitCode: 2 });
            const { verifyArtifact } = await import('../../../server/src/modules/signing/verify.ts');
            const report = verifyArtifact({
              artifact,
              publicKeyPem: key.toString('utf8'),
              bundles: {
                artifact: main,
                provenance: bundle('provenance'),
                sbom: bundle('sbom'),
                scan: bundle('scan'),
                agentSession: bundle('agentSession'),
              },
              builderId: flags.builder,
            });
            emit(ctx.json, report, () =>
              [
                ...report.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.check}: ${c.detail}`),
                report.ok ? 'Verified.' : 'NOT verified.',
              ].join('\n'),
            );
            if (!report.ok) process.exitCode = 1;
          },
        ),
      ),
    ['microapp verify recon-1.0.0.tar.gz --key signing.pub --bundles ./recon-1.0.0'],
  );

  const keys = program.command('keys').description('the platform signing key');
  examples(
    keys
      .command('rotate')
      .description(
        'admins: retire the signing key and make a new one; artifacts signed before still verify with the retired key (listed at /api/v1/keys)',
      )
      .option('--reason <text>', 'why (kept in the audit trail)')
      .action(
        action(async (flags: { reason?: string }, command: Command) => {
          const ctx = ctxOf(command);
          if (!flags.reason || flags.reason.trim().length < 10)
            throw new CliError(
              '--reason is required, in at least 10 characters, e.g. --reason "yearly rotation"',
              {
                exitCode: 2,
              },
            );
          const r = await ctx.client.post<{ current: string; retired: string | null }>(
            '/api/v1/keys/rotate',
            {
              reason: flags.reason.trim(),
            },
          );
          emit(
            ctx.json,
            r,
            () =>
              `New signing key ${r.current.slice(0, 16)}…${r.retired ? `; ${r.retired.slice(0, 16)}… is retired and still verifies what it signed` : ''}.\nVerifiers fetch keys from /api/v1/keys (by key id) or the current one from /api/v1/keys/signing.pub.`,
          );
        }),
      ),
    ['microapp keys rotate --reason "yearly rotation, ticket SEC-1234"'],
  );
}
