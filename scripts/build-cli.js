#!/usr/bin/env node
// Bundles the microapp command into packages/cli/dist/ with esbuild: the client commands and the
// libraries they use in one file, each heavier command's code (the pipeline, the SBOM, signatures) in a
// chunk loaded when that command runs, and the repository's server-side packages left out (the
// `server`, `ci` and `policy` commands load them through tsx; see packages/cli/src/server-code.ts).
//   node scripts/build-cli.js [--outdir DIR]
// bin/microapp.js runs the bundle while it is newer than every file it was built from (listed in
// dist/inputs.json with the lockfile), and the TypeScript sources otherwise.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? resolve(process.argv[at + 1]) : resolve(root, 'packages/cli/dist');
const startedAt = Date.now();

// import.meta.dirname in a bundled file is the bundle's folder: give each source file its own back, so
// paths it resolves from there (the templates folder, say) stay right.
const ownDirname = {
  name: 'own-dirname',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/].*\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.dirname')) return undefined;
      const fromOut = relative(outdir, dirname(args.path)).split('\\').join('/');
      return {
        contents: source.replaceAll(
          'import.meta.dirname',
          `(import.meta.dirname + ${JSON.stringify(`/${fromOut}`)})`,
        ),
        loader: 'ts',
      };
    });
  },
};

// CycloneDX's library root (its schema validator, which finds its schemas beside itself) stays a package
// of its own; the parts the SBOM generator imports by their own entry points are bundled.
const cyclonedxRoot = {
  name: 'cyclonedx-root',
  setup(b) {
    b.onResolve({ filter: /^@cyclonedx\/cyclonedx-library$/ }, (args) => ({
      path: args.path,
      external: true,
    }));
  },
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: [resolve(root, 'packages/cli/src/main.ts')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // The repository's server-side packages run from source (they read files beside themselves and start
  // workers by path); tsx is the loader for them. A package named here is external with its subpaths.
  external: ['@microapp/rego', '@microapp/server', 'tsx'],
  // Packages that are CommonJS inside need require() in an ES module bundle.
  banner: {
    js: "import { createRequire as __microappRequire } from 'node:module'; const require = __microappRequire(import.meta.url);",
  },
  metafile: true,
  logLevel: 'warning',
  plugins: [ownDirname, cyclonedxRoot],
});

// Installed packages change only with the lockfile, which stands for them.
const inputs = [
  ...Object.keys(result.metafile.inputs).filter((f) => !f.includes('node_modules/')),
  'package-lock.json',
  'scripts/build-cli.js',
].sort();
writeFileSync(resolve(outdir, 'inputs.json'), `${JSON.stringify({ builtAt: startedAt, inputs }, null, 1)}\n`);
writeFileSync(resolve(outdir, 'meta.json'), JSON.stringify(result.metafile));
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(
  `microapp CLI bundled: ${relative(root, outdir)}/main.js, ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1e6).toFixed(1)} MB, from ${inputs.length} inputs`,
);
