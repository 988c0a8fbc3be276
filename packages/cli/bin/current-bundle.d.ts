/**
 * The bundled CLI's entry in `dist` (a folder URL) when the bundle is newer than every file it was built
 * from, as its inputs.json lists them relative to `root`; null when it is missing or out of date.
 */
export function currentBundle(dist: URL, root: URL): string | null;
