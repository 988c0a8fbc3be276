// The tracker template (Fastify, and better-sqlite3, a native module) as its developer has it: made from the
// template and locked against the company's npm mirror, ready for `sourceArchive`.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { lockAgainst } from '../../cli/test/npm-registry.ts';
import { renderTemplate } from '../src/modules/catalog/template-files.ts';
import { people } from './harness.ts';

const templates = resolve(import.meta.dirname, '../../../templates');

/** The tracker's files (its `.npmrc` naming the mirror included), written out under `dir` to be locked. */
export async function trackerFromMirror(
  dir: string,
  name: string,
  mirror: { url: string; caFile: string },
): Promise<Record<string, string>> {
  const rendered = renderTemplate(templates, 'tracker', { name, owner: people.alice, department: 'finance' });
  assert.ok(rendered, 'the tracker template');
  const src = join(dir, 'src-app');
  for (const [file, text] of Object.entries(rendered.files)) {
    mkdirSync(dirname(join(src, file)), { recursive: true });
    writeFileSync(join(src, file), text);
  }
  const locked = await lockAgainst(src, mirror.url, mirror.caFile);
  assert.equal(locked.code, 0, locked.out);
  return Object.fromEntries(
    [...Object.keys(rendered.files), '.npmrc'].map((f) => [f, readFileSync(join(src, f), 'utf8')]),
  );
}
