// A small npm registry on loopback for tests, serving real packages: each one is packed from this
// repository's own node_modules (the same code npm installed from the public registry), with its real
// dependency tree. Tests that install an app with dependencies then need no network.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { create } from 'tar';

type Packed = { name: string; version: string; manifest: Record<string, unknown>; tarball: Buffer };

const root = resolve(import.meta.dirname, '../../..');

/** Where Node would find `dep` from the package folder `from` (innermost node_modules first). */
function locate(from: string, dep: string): string | null {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', dep);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root) return null;
    const up = resolve(dir, '..');
    dir = up.endsWith('/node_modules') ? resolve(up, '..') : up;
    if (relative(root, dir).startsWith('..')) return null;
  }
}

/** The files npm would publish of an installed package: no nested node_modules, no build leftovers. */
function filesOf(dir: string, whole = false, source = false): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) {
        if (name === 'node_modules') continue;
        // Packed to be compiled: its sources whole (deps/ included), what this machine compiled left out.
        if (source ? r === 'build' : name === 'obj.target' || name === '.deps' || name === 'deps') continue;
        walk(r);
      } else if (
        st.isFile() &&
        (source || st.size < 4 * 1024 * 1024 || name.endsWith('.node')) &&
        (whole || source || name !== 'binding.gyp')
      )
        out.push(r);
    }
  };
  walk('');
  return out;
}

/**
 * Packs `names` and everything they depend on (dependencies, optional and non-optional peers that are
 * installed) from this repository's node_modules. Install scripts are removed: a native module ships the
 * binary this machine already compiled (as packages with prebuilt binaries do), so nothing compiles. Those
 * named in `compile` are packed as the registry has them instead: their install scripts kept and their
 * compiled `build/` left out, so whoever installs them compiles them.
 */
export async function packClosure(names: string[], options: { compile?: string[] } = {}): Promise<Packed[]> {
  const seen = new Map<string, Packed>();
  const visit = async (dir: string) => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown> & {
      name: string;
      version: string;
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
      scripts?: Record<string, string>;
    };
    const key = `${pkg.name}@${pkg.version}`;
    if (seen.has(key)) return;
    seen.set(key, null as unknown as Packed); // a cycle comes back here before it is packed
    const peers = Object.keys(pkg.peerDependencies ?? {}).filter(
      (p) => !pkg.peerDependenciesMeta?.[p]?.optional,
    );
    // Each dependency pinned to the version installed here (this repository's overrides included), so
    // the tree the registry serves is the one that works here.
    const pin = (specs: Record<string, string> | undefined, required: boolean) => {
      const out: Record<string, string> = {};
      for (const dep of Object.keys(specs ?? {})) {
        const found = locate(dir, dep);
        if (!found) {
          if (required) throw new Error(`${key} needs ${dep}, which is not installed here`);
          continue;
        }
        out[dep] = JSON.parse(readFileSync(join(found, 'package.json'), 'utf8')).version;
      }
      return out;
    };
    const dependencies = pin(pkg.dependencies, true);
    const optionalDependencies = pin(pkg.optionalDependencies, false);
    const peerDependencies = pin(Object.fromEntries(peers.map((p) => [p, '*'])), true);
    const compiled = options.compile?.includes(pkg.name) ?? false;
    const { install: _i, preinstall: _p, postinstall: _o, ...scripts } = pkg.scripts ?? {};
    const {
      dependencies: _d,
      optionalDependencies: _od,
      peerDependencies: _pd,
      peerDependenciesMeta: _pm,
      devDependencies: _dd,
      ...rest
    } = pkg as Record<string, unknown>;
    const manifest = {
      ...rest,
      dependencies,
      optionalDependencies,
      peerDependencies,
      ...(compiled ? { scripts: pkg.scripts ?? {} } : { scripts, gypfile: false }),
    };
    const packageJson = Buffer.from(JSON.stringify(manifest, null, 2));
    const files = filesOf(dir, false, compiled).filter((f) => f !== 'package.json');
    const tarball = await packed(packageJson, dir, files);
    seen.set(key, { name: pkg.name, version: pkg.version, manifest, tarball });
    for (const dep of [
      ...Object.keys(dependencies),
      ...Object.keys(optionalDependencies),
      ...Object.keys(peerDependencies),
    ])
      await visit(locate(dir, dep)!);
  };
  for (const name of names) {
    const dir = locate(root, name);
    if (!dir) throw new Error(`${name} is not installed in this repository`);
    await visit(dir);
  }
  return [...seen.values()];
}

/** A package made from a folder as it is (its own package.json, install scripts and all), as `npm pack` would. */
export async function packFolder(dir: string): Promise<Packed> {
  const packageJson = readFileSync(join(dir, 'package.json'));
  const manifest = JSON.parse(packageJson.toString()) as Packed['manifest'] & {
    name: string;
    version: string;
  };
  const tarball = await packed(
    packageJson,
    dir,
    filesOf(dir, true).filter((f) => f !== 'package.json'),
  );
  return { name: manifest.name, version: manifest.version, manifest, tarball };
}

/** A package tarball (`package/…`) of the files, with `packageJson` as its package.json. */
async function packed(packageJson: Buffer, dir: string, files: string[]) {
  const stage = mkdtempSync(join(tmpdir(), 'microapp-pack-'));
  try {
    const pkgDir = join(stage, 'package');
    mkdirSync(pkgDir);
    writeFileSync(join(pkgDir, 'package.json'), packageJson);
    for (const f of files) {
      mkdirSync(dirname(join(pkgDir, f)), { recursive: true });
      copyFileSync(join(dir, f), join(pkgDir, f));
    }
    const chunks: Buffer[] = [];
    const stream = create({ gzip: true, cwd: stage, portable: true, mtime: new Date(0) }, [
      'package/package.json',
      ...files.map((f) => `package/${f}`),
    ]);
    for await (const c of stream as unknown as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Serves packuments and tarballs of `packages` on 127.0.0.1, over https with `tls` (a key and a certificate
 * for 127.0.0.1); `requests` lists what npm asked for, `refusedHandshakes` the TLS handshakes that failed.
 * With `token`, as a company registry does, every request without `Authorization: Bearer <token>` is
 * answered 401 (`unauthorized` counts them).
 */
export async function startRegistry(
  packages: Packed[],
  options: {
    tls?: { key: string; cert: string };
    token?: string;
    /** The host name tarball URLs use (`localhost` for a mirror the platform reaches by that name). */
    urlHost?: string;
  } = {},
): Promise<{
  url: string;
  requests: string[];
  refusedHandshakes: () => number;
  unauthorized: () => number;
  close: () => Promise<void>;
}> {
  const { tls, token, urlHost = '127.0.0.1' } = options;
  let unauthorized = 0;
  const requests: string[] = [];
  let refused = 0;
  let url = '';
  const byName = new Map<string, Packed[]>();
  for (const p of packages) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  const tarballName = (p: Packed) => `${p.name.split('/').pop()}-${p.version}.tgz`;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    requests.push(path);
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      unauthorized++;
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="npm"' });
      return void res.end('{"error":"authentication required"}');
    }
    const tar = /^\/(.+)\/-\/([^/]+\.tgz)$/.exec(path);
    if (tar) {
      const hit = (byName.get(tar[1]!) ?? []).find((p) => tarballName(p) === tar[2]);
      if (!hit) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return void res.end(hit.tarball);
    }
    const versions = byName.get(path.slice(1));
    if (!versions) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end('{"error":"not found"}');
    }
    const doc = {
      name: versions[0]!.name,
      'dist-tags': {
        latest: versions
          .map((v) => v.version)
          .sort()
          .at(-1),
      },
      versions: Object.fromEntries(
        versions.map((v) => [
          v.version,
          {
            ...v.manifest,
            dist: {
              tarball: `${url}/${v.name}/-/${tarballName(v)}`,
              integrity: `sha512-${createHash('sha512').update(v.tarball).digest('base64')}`,
              shasum: createHash('sha1').update(v.tarball).digest('hex'),
            },
          },
        ]),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc));
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  server.on('tlsClientError', () => {
    refused++;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `${tls ? 'https' : 'http'}://${urlHost}:${(server.address() as { port: number }).port}`;
  return {
    url,
    requests,
    refusedHandshakes: () => refused,
    unauthorized: () => unauthorized,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The version of `name` installed in this repository (what the loopback registry serves). */
export const installed = (name: string) =>
  JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version as string;

/** Runs npm as a person would, outside the test runner's environment. */
export function npm(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  return new Promise((done) =>
    execFile('npm', args, { cwd, env, timeout: 180_000 }, (e, stdout, stderr) =>
      done({ code: e ? 1 : 0, out: stdout + stderr }),
    ),
  );
}

/**
 * Locks an app folder against a company mirror, as its developer does: `.npmrc` names the mirror, the old
 * lockfile goes, and npm writes a new one (no scripts run) trusting the company CA. The `.npmrc` stays.
 */
export async function lockAgainst(folder: string, registryUrl: string, caFile: string) {
  writeFileSync(join(folder, '.npmrc'), `registry=${registryUrl}/\n`);
  rmSync(join(folder, 'package-lock.json'), { force: true });
  return npm(
    ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--cafile', caFile],
    folder,
  );
}

/** The paths of a tar.gz's entries. */
export function entries(file: string): string[] {
  const tar = gunzipSync(readFileSync(file));
  const out: string[] = [];
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = tar
      .subarray(at, at + 100)
      .toString('utf8')
      .replace(/\0.*$/s, '');
    if (!name) break;
    const prefix = tar
      .subarray(at + 345, at + 500)
      .toString('utf8')
      .replace(/\0.*$/s, '');
    const size = Number.parseInt(
      tar
        .subarray(at + 124, at + 136)
        .toString('utf8')
        .trim() || '0',
      8,
    );
    out.push(prefix ? `${prefix}/${name}` : name);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
