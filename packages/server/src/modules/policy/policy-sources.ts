import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Source } from '@microapp/rego';

/** The built-in policy packs shipped in the repository's `policies/` folder. */
export const builtinPolicyDir = resolve(import.meta.dirname, '../../../../../policies');

/** A set of modules and base data, as pushed by an admin or shipped as a pack. */
export type PolicySet = { modules: Source[]; data: Record<string, unknown> };

/** Reads every `.rego` file below a folder and its `data.json` files (merged), in a stable order. */
export function readPolicyDir(dir: string): PolicySet {
  const modules: Source[] = [];
  let data: Record<string, unknown> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.') || name === 'node_modules') continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.rego'))
        modules.push({ file: relative(dir, p), source: readFileSync(p, 'utf8') });
      else if (name === 'data.json')
        data = deepMerge(data, JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>);
    }
  };
  walk(dir);
  return { modules, data };
}

/** Objects merge key by key; anything else is replaced by the later value. */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      cur && v && typeof cur === 'object' && typeof v === 'object' && !Array.isArray(cur) && !Array.isArray(v)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
