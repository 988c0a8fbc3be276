import { readFileSync, statSync } from 'node:fs';

/**
 * The bundled CLI's entry in `dist` (a folder URL) when the bundle is newer than every file it was built
 * from, as its inputs.json lists them relative to `root`; null when it is missing or out of date.
 */
export function currentBundle(dist, root) {
  try {
    const { builtAt, inputs } = JSON.parse(readFileSync(new URL('inputs.json', dist), 'utf8'));
    if (!Array.isArray(inputs) || inputs.length === 0) return null;
    for (const file of inputs) if (statSync(new URL(file, root)).mtimeMs > builtAt) return null;
    return new URL('main.js', dist).href;
  } catch {
    return null;
  }
}
