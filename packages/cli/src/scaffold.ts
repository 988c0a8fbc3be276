import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import {
  listTemplates as listTemplatesIn,
  type TemplateInfo,
} from '../../server/src/modules/catalog/templates.ts';
import { CliError } from './client.ts';

export type { TemplateInfo };

/**
 * The vetted templates: the platform's own, or a company's folder of them (MICROAPP_TEMPLATES_DIR, which a
 * platform build passes on when its server names one).
 */
export const templatesDir = process.env.MICROAPP_TEMPLATES_DIR
  ? resolve(process.env.MICROAPP_TEMPLATES_DIR)
  : resolve(import.meta.dirname, '../../../templates');
const sharedDir = join(templatesDir, '_shared');

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const email = /^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$/;

/** Every template folder with a template.json, sorted by name (as the server lists them). */
export function listTemplates(): TemplateInfo[] {
  return listTemplatesIn(templatesDir);
}

function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out;
}

export type ScaffoldInput = {
  template: string;
  dir: string;
  name?: string;
  owner?: string;
  department?: string;
};

/**
 * Creates an app from a template. Every parameter is validated before anything is written; values go
 * only into the `{{placeholders}}` of the template's own files, and every file lands inside `dir`.
 */
export function scaffold(input: ScaffoldInput): {
  dir: string;
  name: string;
  template: TemplateInfo;
  files: string[];
} {
  const template = listTemplates().find((t) => t.name === input.template);
  if (!template)
    throw new CliError(
      `unknown template "${input.template}"; choose one of: ${listTemplates()
        .map((t) => t.name)
        .join(', ')}`,
      { exitCode: 2 },
    );
  const dir = resolve(input.dir);
  const name = input.name ?? basename(dir).toLowerCase();
  if (!dnsLabel.test(name) || name.includes('--') || name.length > 54)
    throw new CliError(
      `app name "${name}" must be a DNS label (lower-case letters, digits, single hyphens, at most 54); pass --name`,
      { exitCode: 2 },
    );
  if (!input.owner)
    throw new CliError('pass --owner with your e-mail address (the accountable owner)', { exitCode: 2 });
  if (!email.test(input.owner))
    throw new CliError(`--owner "${input.owner}" is not an e-mail address`, { exitCode: 2 });
  if (input.department !== undefined && !dnsLabel.test(input.department))
    throw new CliError(`--department "${input.department}" must be lower-case letters, digits and hyphens`, {
      exitCode: 2,
    });
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new CliError(`${dir} is not empty; choose a new folder`, { exitCode: 2 });

  const values: Record<string, string> = {
    name,
    owner: input.owner.toLowerCase(),
    templateVersion: template.version,
    ...(input.department ? { department: input.department } : {}),
  };
  const render = (text: string) => {
    let out = input.department ? text : text.replace(/department: \{\{department\}\}, /g, '');
    out = out.replace(/\{\{(\w+)\}\}/g, (all, key: string) => values[key] ?? all);
    return out;
  };
  const sources: [string, string][] = [
    ...filesUnder(sharedDir).map((f) => [join(sharedDir, f), f] as [string, string]),
    ...filesUnder(join(templatesDir, template.name))
      .filter((f) => f !== 'template.json')
      .map((f) => [join(templatesDir, template.name, f), f] as [string, string]),
  ];
  const written: string[] = [];
  for (const [from, rel] of sources) {
    const to = resolve(dir, rel);
    if (!to.startsWith(dir + sep)) throw new CliError(`template file ${rel} would land outside ${dir}`);
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, render(readFileSync(from, 'utf8')));
    written.push(rel);
  }
  return { dir, name, template, files: written.sort() };
}
