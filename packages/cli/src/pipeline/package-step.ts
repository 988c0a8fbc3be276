import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkedCopy, HostileTreeError } from './checked-copy.ts';
import type { StepResult } from './run-ci.ts';
import { readLockfile } from './sbom.ts';
import {
  copyAppFiles,
  installScripts,
  registryTrouble,
  run,
  type StepSandbox,
  scriptTrouble,
  tail,
} from './step-run.ts';

type Outcome = { result: Omit<StepResult, 'step' | 'durationMs'>; ship: string | null };

const failed = (detail: string, next?: string): Outcome => ({
  result: { status: 'failed', detail, ...(next ? { next } : {}) },
  ship: null,
});

/**
 * The package step: what runs is what ships. The app's own files are copied into a folder of their own
 * and its production dependencies installed there from the lockfile (development packages stay out),
 * with install scripts only for packages the policy allows. No test ever ran in that folder; with a
 * sandbox, npm runs inside it and the folder is read back through a checked copy. Returns the folder the
 * artifact is made from.
 */
export async function packageStep(o: {
  src: string;
  out: string;
  sandbox: StepSandbox | undefined;
  cache?: string;
  allowedInstallScripts: (() => Promise<string[]>) | undefined;
}): Promise<Outcome> {
  const { src, out, sandbox, cache } = o;

  // What runs is what ships: the app's own files and its production dependencies, installed from the
  // lockfile into a folder of their own that no test ever ran in (development packages stay out).
  const lock = readLockfile(src);
  const shipped = lock.packages.filter((p) => !p.dev);
  const staging = join(out, 'ship');
  rmSync(staging, { recursive: true, force: true });
  copyAppFiles(src, staging);
  if (shipped.length > 0) {
    const r = await run(
      'npm',
      ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
      staging,
      { sandbox, network: true, ...(cache ? { cache } : {}) },
    );
    if (r.code !== 0) {
      const trouble = registryTrouble(r.output);
      return failed(
        `${trouble ? `${trouble.detail}\n` : ''}installing the production dependencies failed:\n${tail(r.output)}`,
        trouble?.next ?? 'make `npm ci --omit=dev` pass locally',
      );
    }
    const allowed = new Set(o.allowedInstallScripts ? await o.allowedInstallScripts() : []);
    const scripted = installScripts(src).filter((n) => allowed.has(n) && shipped.some((p) => p.name === n));
    if (scripted.length > 0) {
      const rb = await run('npm', ['rebuild', ...scripted, '--foreground-scripts'], staging, {
        scripts: true,
        sandbox,
      });
      if (rb.code !== 0)
        return failed(
          `install scripts of ${scripted.join(', ')} failed:\n${tail(rb.output, 30)}`,
          scriptTrouble(rb.output),
        );
    }
  }
  let ship = staging;
  if (sandbox) {
    // npm and the allowed install scripts ran there: the artifact is made from a checked copy.
    const checked = join(out, 'ship-checked');
    rmSync(checked, { recursive: true, force: true });
    try {
      checkedCopy(staging, checked);
    } catch (error) {
      if (!(error instanceof HostileTreeError)) throw error;
      return failed(`the installed dependencies cannot be trusted: ${error.message}`);
    }
    ship = checked;
  }
  const dev = lock.packages.length - shipped.length;
  return {
    ship,
    result: {
      status: 'passed',
      detail: shipped.length
        ? `${shipped.length} production package(s) installed from package-lock.json into what ships${dev ? `; ${dev} development package(s) left out` : ''}`
        : `no production dependencies${dev ? `; ${dev} development package(s) left out` : ''}`,
    },
  };
}
