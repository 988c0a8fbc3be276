import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildsTable } from '../../db/schema.ts';
import type { AppView } from '../catalog/app-view.ts';
import { personalize, unpackUpload } from './build-source.ts';
import type { CommitSource } from './build-types.ts';
import type { FormField } from './form-fields.ts';

/**
 * A build's first step: its source in `src`. From a template, `microapp init` scaffolds it (from
 * `templatesDir` when the platform names one) and the platform writes in the registered manifest, the next
 * version and a form's questions; otherwise the uploaded archive (or the commit's) is unpacked. Returns the
 * version the source carries and the sentence the step shows.
 */
export async function prepareSource(o: {
  app: AppView;
  row: BuildsTable;
  src: string;
  env: Record<string, string>;
  archive: Buffer | undefined;
  source: CommitSource | undefined;
  templatesDir: string | undefined;
  spawnCli: (args: string[], env: Record<string, string>) => Promise<{ code: number | null; stderr: string }>;
  nextVersion: () => Promise<string>;
}): Promise<{ version: string | null; detail: string }> {
  const { app, src } = o;
  if (o.row.source === 'template') {
    const t = app.manifest.template!;
    const init = await o.spawnCli(
      [
        'init',
        src,
        '--template',
        t.name,
        '--name',
        app.name,
        '--owner',
        app.owner,
        ...(app.department ? ['--department', app.department] : []),
        '--json',
      ],
      { ...o.env, ...(o.templatesDir ? { MICROAPP_TEMPLATES_DIR: o.templatesDir } : {}) },
    );
    if (init.code !== 0) throw new Error(`the template could not be scaffolded: ${init.stderr.trim()}`);
    const version = await o.nextVersion();
    const settings = JSON.parse(o.row.settings) as { fields?: FormField[] };
    personalize(src, {
      manifest: app.manifest,
      version,
      ...(settings.fields ? { fields: settings.fields } : {}),
    });
    return {
      version,
      detail: `${t.name} template ${t.version} with the registered manifest, as version ${version}`,
    };
  }
  await unpackUpload(o.archive!, src);
  const pkg = join(src, 'package.json');
  const version = existsSync(pkg)
    ? ((JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version ?? null)
    : null;
  const from = o.source
    ? `commit ${o.source.commit.slice(0, 12)} of ${o.source.ref.replace('refs/heads/', '')}`
    : 'source archive';
  return {
    version,
    detail: `${from} unpacked (${o.archive!.length} bytes)${version ? `, version ${version}` : ''}`,
  };
}
