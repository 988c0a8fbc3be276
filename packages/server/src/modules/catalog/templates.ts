import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The vetted templates shipped with the platform (the repository's templates/ folder). */
export const defaultTemplatesDir = resolve(import.meta.dirname, '../../../../../templates');

export type TemplateInfo = {
  name: string;
  version: string;
  title: string;
  description: string;
  /** A form template's questions as shipped, where the console's form builder starts. */
  formFields?: unknown[];
};

/** The templates an app can start from, as `microapp templates list` shows them. */
export function listTemplates(dir: string): TemplateInfo[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => !d.startsWith('_') && existsSync(join(dir, d, 'template.json')))
    .sort()
    .map((d) => {
      const info = JSON.parse(readFileSync(join(dir, d, 'template.json'), 'utf8')) as TemplateInfo;
      const form = join(dir, d, 'form.json');
      if (existsSync(form))
        info.formFields = (JSON.parse(readFileSync(form, 'utf8')) as { fields: unknown[] }).fields;
      return info;
    });
}
