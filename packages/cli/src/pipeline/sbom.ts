import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as Enums from '@cyclonedx/cyclonedx-library/Enums';
import * as Models from '@cyclonedx/cyclonedx-library/Models';
import * as Serialize from '@cyclonedx/cyclonedx-library/Serialize';
import * as SPDX from '@cyclonedx/cyclonedx-library/SPDX';
import * as Spec from '@cyclonedx/cyclonedx-library/Spec';

// The library's parts the generator needs, by their own entry points: its root also loads the schema
// validator (Ajv compiling CycloneDX's schemas, two thirds of a run's time), which runs in the tests
// instead (`validateSbom`, sbom.test.ts), over every template's SBOM and a 450-package tree.

type LockEntry = {
  name?: string;
  version?: string;
  integrity?: string;
  license?: string;
  resolved?: string;
  dev?: boolean;
  optional?: boolean;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

/** A package.json's license, in any of the shapes npm has accepted ("MIT", {type}, [{type}]). */
function licenseIn(pkg: { license?: unknown; licenses?: unknown }): string | null {
  const one = (l: unknown): string | null =>
    typeof l === 'string'
      ? l
      : l && typeof (l as { type?: unknown }).type === 'string'
        ? (l as { type: string }).type
        : null;
  if (pkg.license !== undefined) return one(pkg.license);
  if (Array.isArray(pkg.licenses)) {
    const all = pkg.licenses.map(one).filter((x): x is string => x !== null);
    return all.length > 1 ? `(${all.join(' OR ')})` : (all[0] ?? null);
  }
  return null;
}

/** A package from the lockfile, as the scan and the license check see it. */
export type LockPackage = {
  name: string;
  version: string;
  purl: string;
  license: string | null;
  dev: boolean;
  integrity: string | null;
};

const purlOf = (name: string, version: string) =>
  `pkg:npm/${name.startsWith('@') ? `%40${name.slice(1)}` : name}@${encodeURIComponent(version)}`;

/**
 * Reads package-lock.json (v2 or v3): every installed package once, and who depends on whom (peers
 * included). With `installed` (folders where the lockfile was installed, first match wins), what is
 * installed completes it: a license the lockfile does not record is read from the package's own
 * package.json, and an optional package that is not installed (another platform's binary) is left out.
 */
export function readLockfile(dir: string, options: { installed?: string[] } = {}) {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as {
    name?: string;
    version?: string;
    lockfileVersion?: number;
    packages?: Record<string, LockEntry>;
  };
  if (!lock.packages || (lock.lockfileVersion ?? 0) < 2)
    throw new Error(
      'package-lock.json must be lockfileVersion 2 or 3 (npm 7 or newer); run `npm install` with a current npm',
    );
  const root = lock.packages[''] ?? {};
  const roots = (options.installed ?? []).filter((r) => existsSync(join(r, 'node_modules')));
  const installedAt = (path: string) => {
    for (const r of roots) {
      const file = join(r, path, 'package.json');
      if (existsSync(file)) return file;
    }
    return null;
  };
  const byPath = new Map<string, LockPackage>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.link) continue;
    const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    if (!entry.version) continue;
    const file = roots.length ? installedAt(path) : null;
    if (roots.length && !file && entry.optional) continue; // not for this platform: not installed, not shipped
    let license = entry.license ?? null;
    if (!license && file)
      try {
        license = licenseIn(JSON.parse(readFileSync(file, 'utf8')));
      } catch {
        // an unreadable package.json: no license known, which the license check reports
      }
    byPath.set(path, {
      name,
      version: entry.version,
      purl: purlOf(name, entry.version),
      license,
      dev: entry.dev === true,
      integrity: entry.integrity ?? null,
    });
  }
  // Node's resolution: a dependency of `a/node_modules/b` is looked up from the innermost node_modules outwards.
  const resolve = (from: string, dep: string): LockPackage | undefined => {
    let base = from;
    for (;;) {
      const hit = byPath.get(`${base ? `${base}/` : ''}node_modules/${dep}`);
      if (hit) return hit;
      if (!base) return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const edges = new Map<string, Set<string>>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (entry.link) continue;
    const from = path === '' ? 'root' : byPath.get(path)?.purl;
    if (!from) continue;
    const deps = {
      ...entry.dependencies,
      ...entry.optionalDependencies,
      ...entry.peerDependencies,
      ...(path === '' ? root.devDependencies : {}),
    };
    for (const dep of Object.keys(deps)) {
      const target = resolve(path, dep);
      if (target) (edges.get(from) ?? edges.set(from, new Set()).get(from)!).add(target.purl);
    }
  }
  const unique = new Map<string, LockPackage>();
  // One component per purl; development-only only if every copy of it is (a copy that ships wins).
  for (const p of byPath.values()) {
    const seen = unique.get(p.purl);
    unique.set(p.purl, seen ? { ...seen, dev: seen.dev && p.dev } : p);
  }
  return {
    name: root.name ?? lock.name ?? 'app',
    version: root.version ?? lock.version ?? '0.0.0',
    packages: [...unique.values()],
    edges,
  };
}

function sriToHex(integrity: string | null): { alg: Enums.HashAlgorithm; hex: string } | null {
  const m = integrity ? /^sha512-([A-Za-z0-9+/=]+)/.exec(integrity) : null;
  return m
    ? { alg: Enums.HashAlgorithm['SHA-512'], hex: Buffer.from(m[1]!, 'base64').toString('hex') }
    : null;
}

function licensesOf(license: string | null): Models.LicenseRepository {
  const repo = new Models.LicenseRepository();
  if (!license) return repo;
  if (SPDX.isSupportedSpdxId(license)) repo.add(new Models.SpdxLicense(license));
  else if (/\s(AND|OR|WITH)\s/.test(license)) repo.add(new Models.LicenseExpression(license));
  else repo.add(new Models.NamedLicense(license));
  return repo;
}

/**
 * A CycloneDX 1.6 JSON SBOM of the lockfile: every package once with purl, SHA-512 from the
 * lockfile integrity, license, and the dependency graph. The same lockfile gives the same bytes.
 */
export async function buildSbom(
  dir: string,
  options: { installed?: string[] } = {},
): Promise<{ json: string; packages: LockPackage[] }> {
  const lock = readLockfile(dir, options);
  const bom = new Models.Bom();
  const lockDigest = createHash('sha256')
    .update(readFileSync(join(dir, 'package-lock.json')))
    .digest('hex');
  // A stable serial number: derived from the lockfile, so rebuilding gives the same document.
  const h = lockDigest;
  bom.serialNumber = `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  const rootComponent = new Models.Component(Enums.ComponentType.Application, lock.name, {
    version: lock.version,
    bomRef: 'root',
    purl: purlOf(lock.name, lock.version) as unknown as Models.Component['purl'],
  });
  bom.metadata.component = rootComponent;
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, 'microapp', { version: '0.1.0' }),
  );
  const components = new Map<string, Models.Component>();
  for (const p of lock.packages) {
    const hashes = new Models.HashDictionary();
    const sri = sriToHex(p.integrity);
    if (sri) hashes.set(sri.alg, sri.hex);
    const c = new Models.Component(
      Enums.ComponentType.Library,
      p.name.includes('/') ? p.name.split('/')[1]! : p.name,
      {
        group: p.name.startsWith('@') ? p.name.split('/')[0] : undefined,
        version: p.version,
        bomRef: p.purl,
        purl: p.purl as unknown as Models.Component['purl'],
        hashes,
        licenses: licensesOf(p.license),
        // Development-only packages are listed for the record but do not ship: CycloneDX's `excluded`.
        scope: p.dev ? Enums.ComponentScope.Excluded : Enums.ComponentScope.Required,
      },
    );
    components.set(p.purl, c);
    bom.components.add(c);
  }
  for (const [from, tos] of lock.edges) {
    const source = from === 'root' ? rootComponent : components.get(from);
    for (const to of tos) {
      const target = components.get(to);
      if (source && target) source.dependencies.add(target.bomRef);
    }
  }
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  const json = serializer.serialize(bom, { sortLists: true, space: 2 });
  return { json, packages: lock.packages };
}

/**
 * Why an SBOM does not validate against CycloneDX 1.6's strict JSON schema, or null when it does. The
 * generator's tests call it on what the generator writes; the pipeline does not (see the imports above).
 */
export async function validateSbom(json: string): Promise<string | null> {
  const { Validation } = await import('@cyclonedx/cyclonedx-library');
  const problem = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json);
  return problem ? JSON.stringify(problem).slice(0, 500) : null;
}
