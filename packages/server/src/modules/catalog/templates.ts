import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

/** The vetted templates shipped with the platform (the repository's templates/ folder). */
export const defaultTemplatesDir = resolve(import.meta.dirname, '../../../../../templates');

export type TemplateInfo = {
  name: string;
  version: string;
  title: string;
  description: string;
  /** A form template's questions as shipped, where the console's form builder starts. */
  formFields?: unknown[];
  /**
   * What the template's own microapp.yaml declares, which the console's wizard offers as its first answers:
   * what the app is for, the data it handles and the company connectors its code calls.
   */
  suggested?: { purpose: string; dataClasses: string[]; connectors: string[] };
};

/** The answers a template's microapp.yaml gives, its `{{placeholders}}` aside. */
function suggestedBy(file: string): TemplateInfo['suggested'] {
  if (!existsSync(file)) return undefined;
  const manifest = parse(readFileSync(file, 'utf8').replace(/\{\{\w+\}\}/g, 'x')) as {
    purpose?: unknown;
    dataClasses?: unknown;
    integrations?: { connectors?: unknown };
  };
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  return {
    purpose: typeof manifest.purpose === 'string' ? manifest.purpose : '',
    dataClasses: strings(manifest.dataClasses),
    connectors: strings(manifest.integrations?.connectors),
  };
}

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
      const suggested = suggestedBy(join(dir, d, 'microapp.yaml'));
      if (suggested) info.suggested = suggested;
      return info;
    });
}
