import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar';
import { stringify } from 'yaml';
import { AppError } from '../../errors.ts';
import type { Manifest } from '../catalog/manifest-schema.ts';
import type { FormField } from './form-fields.ts';

export const uploadLimits = { bytes: 20 * 1024 * 1024, files: 5000, unpackedBytes: 100 * 1024 * 1024 };

/**
 * Unpacks an uploaded source archive (tar.gz) into `dir`. Only plain files and folders inside `dir` are
 * accepted: no absolute paths, no `..`, no links or devices, and limits on count and unpacked size.
 * Anything else refuses the whole upload with the entry named.
 */
export async function unpackUpload(archive: Buffer, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const root = resolve(dir);
  let files = 0;
  let bytes = 0;
  let refused: string | null = null;
  await pipeline(
    Readable.from(archive),
    extract({
      cwd: root,
      strict: true,
      preservePaths: false,
      preserveOwner: false,
      noChmod: true,
      filter: (path, entry) => {
        const type = 'type' in entry ? entry.type : 'File';
        const target = resolve(root, path);
        if (refused) return false;
        if (
          path.startsWith('/') ||
          path.split(/[\\/]/).includes('..') ||
          !`${target}${sep}`.startsWith(`${root}${sep}`)
        )
          refused = `${path} would land outside the build folder`;
        else if (type !== 'File' && type !== 'Directory' && type !== 'OldFile' && type !== 'ContiguousFile')
          refused = `${path} is a ${type}; only files and folders are accepted`;
        else if (++files > uploadLimits.files) refused = `more than ${uploadLimits.files} files`;
        else {
          bytes += 'size' in entry ? Number(entry.size ?? 0) : 0;
          if (bytes > uploadLimits.unpackedBytes)
            refused = `more than ${uploadLimits.unpackedBytes / 1024 / 1024} MB unpacked`;
        }
        return refused === null;
      },
    }),
  ).catch((error: Error) => {
    refused ??= `the archive could not be read: ${error.message}`;
  });
  if (refused) throw new AppError('bad_request', `the source archive was refused: ${refused}`);
  // Belt and braces: nothing that is not a plain file or folder may be left behind.
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (!st.isFile())
        throw new AppError('bad_request', `the source archive holds ${name}, not a plain file`);
    }
  };
  walk(root);
}

/** A package.json or package-lock.json with its version set (the lockfile's root package too). */
export function withVersion(text: string, version: string): string {
  const json = JSON.parse(text) as { version?: string; packages?: Record<string, { version?: string }> };
  json.version = version;
  if (json.packages?.['']) json.packages[''].version = version;
  return `${JSON.stringify(json, null, 2)}\n`;
}

/** A form app's questions as its form.json holds them. */
export const formJson = (fields: FormField[]) => `${JSON.stringify({ fields }, null, 2)}\n`;

/**
 * Puts the platform's own answers into a scaffolded template: the registered manifest (so the pipeline's
 * manifest check matches the approval), the version to publish, and, for a form, its questions.
 */
export function personalize(
  dir: string,
  input: { manifest: Manifest; version: string; fields?: FormField[] },
) {
  writeFileSync(join(dir, 'microapp.yaml'), stringify(input.manifest));
  for (const file of ['package.json', 'package-lock.json']) {
    const path = join(dir, file);
    writeFileSync(path, withVersion(readFileSync(path, 'utf8'), input.version));
  }
  if (input.fields) writeFileSync(join(dir, 'form.json'), formJson(input.fields));
}
