// The repository's own TypeScript packages that a few local commands run (`server`, `ci`, `policy`):
// loaded only when such a command runs, so client commands start without them. The bundled CLI
// (dist/, `npm run build:cli`) leaves them out and loads them here through tsx's loader.

type Modules = {
  server: typeof import('@microapp/server');
  policy: typeof import('@microapp/server/policy');
  sandbox: typeof import('@microapp/server/sandbox');
  rego: typeof import('@microapp/rego');
};

const specifiers: Record<keyof Modules, string> = {
  server: '@microapp/server',
  policy: '@microapp/server/policy',
  sandbox: '@microapp/server/sandbox',
  rego: '@microapp/rego',
};

let typescript: Promise<void> | undefined;

/** One of the server-side packages; TypeScript loading is switched on first when this runs bundled. */
export async function serverCode<K extends keyof Modules>(name: K): Promise<Modules[K]> {
  // Loaded as a .ts file, this module already runs under a TypeScript loader; bundled, it is a .js chunk.
  typescript ??= import.meta.url.endsWith('.ts')
    ? Promise.resolve()
    : import('tsx/esm/api').then(({ register }) => {
        register();
      });
  await typescript;
  // A specifier in a variable: the bundler leaves the import to run time.
  const specifier = specifiers[name];
  return (await import(specifier)) as Modules[K];
}
