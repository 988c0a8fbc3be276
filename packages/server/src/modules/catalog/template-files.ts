import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { listTemplates, type TemplateInfo } from './templates.ts';

/** The values a template's `{{placeholders}}` take. */
export type TemplateValues = { name: string; owner: string; department?: string | null };

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

/**
 * A template's files with its placeholders filled, in memory: the shared files (`_shared/`) and the
 * template's own, without its template.json. What `microapp init` writes to a folder, for callers with no
 * folder (the MCP endpoint's scaffold tool). Undefined for an unknown template.
 */
export function renderTemplate(
  dir: string,
  templateName: string,
  values: TemplateValues,
): { template: TemplateInfo; files: Record<string, string> } | undefined {
  const template = listTemplates(dir).find((t) => t.name === templateName);
  if (!template) return undefined;
  const vars: Record<string, string> = {
    name: values.name,
    owner: values.owner.toLowerCase(),
    templateVersion: template.version,
    ...(values.department ? { department: values.department } : {}),
  };
  const render = (text: string) =>
    (values.department ? text : text.replace(/department: \{\{department\}\}, /g, '')).replace(
      /\{\{(\w+)\}\}/g,
      (all, key: string) => vars[key] ?? all,
    );
  const files: Record<string, string> = {};
  const shared = join(dir, '_shared');
  for (const f of filesUnder(shared)) files[f] = render(readFileSync(join(shared, f), 'utf8'));
  const own = join(dir, template.name);
  for (const f of filesUnder(own).filter((f) => f !== 'template.json'))
    files[f] = render(readFileSync(join(own, f), 'utf8'));
  return { template, files };
}
