import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Client } from '../client.ts';
import { buildArtifact } from './artifact.ts';
import { checkedCopy, HostileTreeError } from './checked-copy.ts';
import { checkLicenses } from './licenses.ts';
import { packageStep } from './package-step.ts';
import { remedies } from './remediation.ts';
import { buildSbom, type LockPackage } from './sbom.ts';
import { installScripts, registryTrouble, run, type StepSandbox, scriptTrouble, tail } from './step-run.ts';

export type { StepSandbox } from './step-run.ts';

import { cyclonedxToSpdx } from './spdx.ts';

export type StepStatus = 'passed' | 'failed' | 'skipped';
export type StepResult = {
  step: string;
  status: StepStatus;
  durationMs: number;
  detail: string;
  next?: string;
};
export type CiResult = {
  ok: boolean;
  app: string;
  steps: StepResult[];
  artifact: { digest: string; file: string } | null;
  sbom: string | null;
};

type ScanResult = {
  snapshot: { id: string; digest: string };
  tier: string;
  threshold: string | null;
  passed: boolean;
  findings: {
    ids: string[];
    package: string;
    version: string;
    fixed: string[];
    severity: string;
    exception: { expiresAt: string } | null;
  }[];
  blocking: ScanResult['findings'];
};

type AppView = {
  state: string;
  tier: string;
  manifest: Record<string, unknown>;
  approval: { missing: { specialty: string | null }[] };
};

const canonical = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(canonical).join(',')}]`
    : v && typeof v === 'object'
      ? `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
          .join(',')}}`
      : JSON.stringify(v);

/**
 * The pipeline's local steps, in order: manifest check, install, test, SBOM, vulnerability scan,
 * license check, policy, artifact. Each reports status, duration and, on failure, what to do next.
 */
export async function runCi(options: {
  dir: string;
  client: Client | null;
  evaluatePolicy: (
    input: unknown,
    appPolicyDir: string | null,
  ) => Promise<{ denials: string[]; tests: { failed: string[] } }>;
  progress: (r: StepResult, index: number, total: number) => void;
  publish?: boolean;
  /** Also write an SPDX 2.3 export of the SBOM. */
  spdx?: boolean;
  /** Packages whose install scripts may run, from the policy data. */
  allowedInstallScripts?: () => Promise<string[]>;
  /** Run install and test inside this sandbox (the platform's builds do). */
  sandbox?: StepSandbox;
  /**
   * With a sandbox: a folder the sandboxed steps never had, where the checked copy of the app folder and
   * the outputs go (a fresh temporary folder when not given).
   */
  workDir?: string;
}): Promise<CiResult> {
  const sandbox = options.sandbox;
  const { dir } = options;
  const steps: StepResult[] = [];
  const total = 10;
  let stopped = false;
  let manifest: Record<string, unknown> = {};
  let tier = 'high';
  let packages: LockPackage[] = [];
  let sbomFile: string | null = null;
  let scanResult: ScanResult | null = null;
  let artifact: CiResult['artifact'] = null;
  // Where the host-side steps read the app and write what they make. Without a sandbox, the app folder
  // itself. With one, install scripts and tests have run in the app folder by the time those steps come,
  // so they read a checked copy instead and write into a folder the sandbox never had (see checkedCopy).
  let src = dir;
  let out = join(dir, '.microapp');
  // With a sandbox: a folder its steps never get whole (the checked copy, the outputs, and npm's cache,
  // which only the two install steps see).
  const work = sandbox ? (options.workDir ?? mkdtempSync(join(tmpdir(), 'microapp-ci-'))) : null;
  const cache = work ? join(work, 'npm-cache') : undefined;
  if (work && cache) mkdirSync(cache, { recursive: true, mode: 0o700 });
  // What ships: the app's files and its production dependencies (the package step).
  let ship: string | null = null;

  const step = async (name: string, fn: () => Promise<Omit<StepResult, 'step' | 'durationMs'>>) => {
    if (stopped) return;
    const started = performance.now();
    let r: Omit<StepResult, 'step' | 'durationMs'>;
    try {
      r = await fn();
    } catch (error) {
      r = { status: 'failed', detail: (error as Error).message };
    }
    const result: StepResult = { step: name, durationMs: Math.round(performance.now() - started), ...r };
    steps.push(result);
    options.progress(result, steps.length, total);
    if (result.status === 'failed') stopped = true;
  };

  await step('manifest', async () => {
    const file = join(dir, 'microapp.yaml');
    if (!existsSync(file))
      return {
        status: 'failed',
        detail: 'no microapp.yaml here',
        next: 'run `microapp ci` in the app folder, or create one with `microapp init`',
      };
    manifest = parseYaml(readFileSync(file, 'utf8'), { uniqueKeys: true }) as Record<string, unknown>;
    const name = String(manifest.name ?? '');
    if (!options.client)
      return { status: 'skipped', detail: `offline: ${name} was not checked against its registration` };
    let app: AppView;
    try {
      app = await options.client.get<AppView>(`/api/v1/apps/${encodeURIComponent(name)}`);
    } catch (error) {
      return { status: 'failed', detail: (error as Error).message, next: 'run `microapp register` first' };
    }
    const local = { ...manifest, owner: String(manifest.owner ?? '').toLowerCase() };
    if (canonical(local) !== canonical(app.manifest)) {
      const res = await options.client.post<{ app: AppView; reReview: boolean }>('/api/v1/apps', local);
      app = res.app;
      if (app.state !== 'approved')
        return {
          status: 'failed',
          detail: `the manifest changed and ${name} is ${app.state.replace('_', ' ')} (tier ${app.tier}): waiting for ${app.approval.missing.map((s) => `${s.specialty ?? 'any'} review`).join(' and ')}`,
          next: 'ask the reviewers to approve the new revision, then run `microapp ci` again',
        };
    }
    tier = app.tier;
    if (app.state !== 'approved')
      return {
        status: 'failed',
        detail: `${name} is ${app.state.replace('_', ' ')}, not approved`,
        next: '`microapp apps show` says who still needs to review it',
      };
    return { status: 'passed', detail: `${name} matches its approved registration (tier ${tier})` };
  });

  await step('install', async () => {
    if (!existsSync(join(dir, 'package-lock.json')))
      return {
        status: 'failed',
        detail: 'no package-lock.json: installs come from the lockfile only',
        next: 'run `npm install` and commit package-lock.json',
      };
    const r = await run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], dir, {
      sandbox,
      network: true,
      ...(cache ? { cache } : {}),
    });
    if (r.code !== 0) {
      const trouble = registryTrouble(r.output);
      return {
        status: 'failed',
        detail: `${trouble ? `${trouble.detail}\n` : ''}npm ci failed:\n${tail(r.output)}`,
        next: trouble?.next ?? 'make `npm ci` pass locally; install scripts are off',
      };
    }
    // Install scripts run only for packages the policy names (data.microapp.config.allowed_install_scripts).
    const withScripts = installScripts(dir);
    const allowed = new Set(options.allowedInstallScripts ? await options.allowedInstallScripts() : []);
    const runScripts = withScripts.filter((n) => allowed.has(n));
    const skipped = withScripts.filter((n) => !allowed.has(n));
    if (runScripts.length > 0) {
      const rb = await run('npm', ['rebuild', ...runScripts, '--foreground-scripts'], dir, {
        scripts: true,
        sandbox,
      });
      if (rb.code !== 0) {
        const next = scriptTrouble(rb.output);
        return {
          status: 'failed',
          detail: `install scripts of ${runScripts.join(', ')} failed:\n${tail(rb.output, 30)}`,
          ...(next ? { next } : {}),
        };
      }
    }
    const notes = [
      runScripts.length ? `install scripts run for ${runScripts.join(', ')} (allowed by policy)` : '',
      skipped.length ? `install scripts not run for ${skipped.join(', ')} (not allowed by policy)` : '',
    ].filter(Boolean);
    return {
      status: 'passed',
      detail: `dependencies installed from package-lock.json${notes.length ? `; ${notes.join('; ')}` : ', install scripts off'}`,
    };
  });

  await step('test', async () => {
    const r = await run('npm', ['test'], dir, { sandbox });
    if (r.code !== 0)
      return {
        status: 'failed',
        detail: `npm test failed:\n${tail(r.output)}`,
        next: 'fix the failing tests (`npm test`)',
      };
    const summary = /# pass (\d+)/.exec(r.output);
    const passed = summary ? `${summary[1]} tests passed` : 'npm test passed';
    if (!work) return { status: 'passed', detail: passed };
    try {
      checkedCopy(dir, join(work, 'app'));
    } catch (error) {
      if (!(error instanceof HostileTreeError)) throw error;
      return {
        status: 'failed',
        detail: `${passed}, but the app folder they left cannot be trusted: ${error.message}`,
        next: 'remove the link or special file (tests and install scripts must not create them)',
      };
    }
    src = join(work, 'app');
    out = join(work, 'outputs');
    return { status: 'passed', detail: passed };
  });

  await step('package', async () => {
    const r = await packageStep({
      src,
      out,
      sandbox,
      ...(cache ? { cache } : {}),
      allowedInstallScripts: options.allowedInstallScripts,
    });
    ship = r.ship;
    return r.result;
  });

  await step('sbom', async () => {
    // Licenses the lockfile does not record are read from the installed packages: the shipped ones from
    // the package step's folder, the development ones from the test step's install.
    const sbom = await buildSbom(src, { installed: [...(ship ? [ship] : []), src] });
    packages = sbom.packages;
    mkdirSync(out, { recursive: true });
    sbomFile = join(out, 'sbom.cdx.json');
    writeFileSync(sbomFile, sbom.json);
    if (options.spdx)
      writeFileSync(
        join(out, 'sbom.spdx.json'),
        `${JSON.stringify(cyclonedxToSpdx(JSON.parse(sbom.json)), null, 2)}\n`,
      );
    return {
      status: 'passed',
      detail: `CycloneDX 1.6, ${packages.length} packages: ${sbomFile}`,
    };
  });

  await step('scan', async () => {
    if (!options.client || !sbomFile)
      return { status: 'skipped', detail: "offline: the scan uses the platform's advisory data" };
    const scan = await options.client.post<ScanResult>('/api/v1/scans', {
      sbom: JSON.parse(readFileSync(sbomFile, 'utf8')),
      app: String(manifest.name),
    });
    scanResult = scan;
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'scan.json'), `${JSON.stringify(scan, null, 2)}\n`);
    const line = (f: ScanResult['findings'][number]) =>
      `${f.ids[0]} (${f.severity}) in ${f.package}@${f.version}${f.fixed.length ? `, fixed in ${f.fixed.join(', ')}` : ', no fix yet'}${f.exception ? ` - excepted until ${f.exception.expiresAt.slice(0, 10)}` : ''}`;
    if (!scan.passed)
      return {
        status: 'failed',
        detail: `${scan.blocking.length} finding(s) at or above ${scan.threshold} for a ${scan.tier}-tier app:\n${scan.blocking.map(line).join('\n')}`,
        next: `${remedies(src, scan.blocking).join('\n')}\n(or ask a security reviewer for a time-limited exception)`,
      };
    const excepted = scan.findings.filter((f) => f.exception).length;
    return {
      status: 'passed',
      detail: `${scan.findings.length} finding(s), none blocking${excepted ? ` (${excepted} under an exception)` : ''}; advisories ${scan.snapshot.digest.slice(0, 19)}...`,
    };
  });

  await step('licenses', async () => {
    const { findings, blocking } = checkLicenses(packages, tier);
    if (blocking.length > 0)
      return {
        status: 'failed',
        detail: blocking
          .map((f) => `${f.package}@${f.version} (${f.license ?? 'none'}): ${f.problem}`)
          .join('\n'),
        next: 'replace the package, or ask the security team for a license exception',
      };
    return {
      status: 'passed',
      detail: findings.length
        ? `${findings.length} to review, none blocking`
        : `${packages.filter((p) => !p.dev).length} packages, all licenses allowed`,
    };
  });

  await step('policy', async () => {
    const appPolicy = existsSync(join(src, 'policy')) ? join(src, 'policy') : null;
    const result = await options.evaluatePolicy(
      {
        request: { method: 'deploy' },
        manifest,
        sbom: { components: packages.map((p) => p.purl) },
        scan: scanResult,
      },
      appPolicy,
    );
    if (result.tests.failed.length > 0)
      return {
        status: 'failed',
        detail: `policy tests failed: ${result.tests.failed.join(', ')}`,
        next: 'run `microapp policy test policy`',
      };
    if (result.denials.length > 0)
      return {
        status: 'failed',
        detail: result.denials.join('\n'),
        next: 'change the manifest, or ask the platform team about the policy',
      };
    return {
      status: 'passed',
      detail: `no policy denies the deploy${appPolicy ? "; the app's own policy tests pass" : ''}`,
    };
  });

  await step('artifact', async () => {
    mkdirSync(out, { recursive: true });
    const file = join(out, 'artifact.tar.gz');
    const a = await buildArtifact(ship ?? src, file, { dependencies: ship !== null });
    artifact = { digest: a.digest, file };
    return { status: 'passed', detail: `${a.digest} (${a.files} files, ${a.bytes} bytes, deterministic)` };
  });

  await step('publish', async () => {
    if (!options.client || !artifact || !sbomFile)
      return {
        status: 'skipped',
        detail: 'offline: signing happens on the platform, whose key never leaves it',
      };
    if (options.publish === false) return { status: 'skipped', detail: '--no-publish' };
    const pkg = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8')) as { version?: string };
    const version = pkg.version ?? '0.0.0';
    const bytes = readFileSync((artifact as { file: string }).file);
    const lockfile = readFileSync(join(src, 'package-lock.json'));
    const published = await options.client.post<{
      version: string;
      digest: string;
      bundles: Record<string, unknown>;
    }>(`/api/v1/apps/${encodeURIComponent(String(manifest.name))}/versions`, {
      version,
      artifact: bytes.toString('base64'),
      sbom: JSON.parse(readFileSync(sbomFile, 'utf8')),
      sourceDigest: (artifact as { digest: string }).digest,
      lockfileDigest: `sha256:${createHash('sha256').update(lockfile).digest('hex')}`,
    });
    for (const [kind, bundle] of Object.entries(published.bundles))
      writeFileSync(join(out, `${kind}.sigstore.json`), `${JSON.stringify(bundle, null, 2)}\n`);
    return {
      status: 'passed',
      detail: `signed and published ${manifest.name}@${published.version} (${published.digest}); bundles in ${out}`,
    };
  });

  return {
    ok: steps.every((s) => s.status !== 'failed') && steps.length === total,
    app: String(manifest.name ?? ''),
    steps,
    artifact,
    sbom: sbomFile,
  };
}
