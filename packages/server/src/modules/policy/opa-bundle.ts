import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseModule } from '@microapp/rego';
import { create } from 'tar';
import type { PolicySet } from './policy-sources.ts';

/**
 * Writes an OPA bundle (tar.gz with .manifest, modules and data.json) that an OPA server or
 * Gatekeeper loads as is. v0-syntax modules are listed in `file_rego_versions`. Entries are sorted
 * and dated at the epoch, so the same policies give the same bytes.
 */
export async function writeOpaBundle(
  set: PolicySet,
  out: string,
  revision: string,
): Promise<{ files: string[] }> {
  const staging = mkdtempSync(join(tmpdir(), 'microapp-bundle-'));
  try {
    const fileVersions: Record<string, number> = {};
    const files: string[] = [];
    for (const m of [...set.modules].sort((a, b) => (a.file < b.file ? -1 : 1))) {
      const parsed = parseModule(m.source, m.file);
      if (parsed.regoVersion === 'v0') fileVersions[`/${m.file}`] = 0;
      const path = join(staging, m.file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, m.source);
      files.push(m.file);
    }
    writeFileSync(join(staging, 'data.json'), `${JSON.stringify(set.data, null, 2)}\n`);
    const manifest = {
      revision,
      roots: [''],
      rego_version: 1,
      ...(Object.keys(fileVersions).length > 0 ? { file_rego_versions: fileVersions } : {}),
    };
    writeFileSync(join(staging, '.manifest'), `${JSON.stringify(manifest, null, 2)}\n`);
    const entries = ['.manifest', 'data.json', ...files];
    await create(
      { gzip: { level: 9 }, file: out, cwd: staging, portable: true, mtime: new Date(0), noDirRecurse: true },
      entries,
    );
    return { files: entries };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
