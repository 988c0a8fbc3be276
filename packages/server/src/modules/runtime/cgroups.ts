import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What one app instance may use. */
export type ResourceLimits = { memoryMb: number; cpu: number; pids: number };

/** Defaults for an app whose manifest does not say (runtime.memoryMb, runtime.cpu). */
export const defaultLimits: ResourceLimits = { memoryMb: 256, cpu: 0.5, pids: 128 };

/** What one platform build (the pipeline and every step) may use unless the platform says otherwise. */
export const defaultBuildLimits: ResourceLimits = { memoryMb: 2048, cpu: 1, pids: 512 };

/** One instance's control group, in every hierarchy that limits it. */
export type ControlGroup = {
  /** `cgroup.procs` files a process writes its pid to, before it execs the sandbox. */
  procs: string[];
  /** How many times the kernel's OOM killer has killed a process of this group. */
  oomKills(): number;
  /** The limits as the kernel reads them back (bytes, quota per period, pids). */
  readBack(): { memoryBytes: number; cpuQuotaUs: number; cpuPeriodUs: number; pids: number };
  /** Removes the group once its processes are gone (retried briefly while the kernel lets go). */
  remove(): void;
};

export type CgroupDriver = { version: 1 | 2; create(name: string, limits: ResourceLimits): ControlGroup };

const period = 100_000;

function write(file: string, value: string) {
  writeFileSync(file, value);
}

function removeDirs(dirs: string[]) {
  const attempt = (left: number) => {
    const busy = dirs.filter((d) => {
      try {
        if (existsSync(d)) rmdirSync(d);
        return false;
      } catch {
        return true;
      }
    });
    if (busy.length && left > 0) setTimeout(() => attempt(left - 1), 200).unref();
  };
  attempt(25);
}

/**
 * Finds a cgroup hierarchy this process may write: cgroup v2 (one unified tree) or v1 (a tree per
 * controller: memory, cpu, pids). Null when there is none (not root, or no delegation): the runtime then
 * runs apps without resource limits and says so at start.
 */
export function detectCgroups(root = '/sys/fs/cgroup'): CgroupDriver | null {
  const v2 = existsSync(join(root, 'cgroup.controllers'))
    ? root
    : existsSync(join(root, 'unified', 'cgroup.controllers')) &&
        readFileSync(join(root, 'unified', 'cgroup.controllers'), 'utf8').includes('memory')
      ? join(root, 'unified')
      : null;
  if (v2) {
    try {
      const base = join(v2, 'microapp');
      mkdirSync(base, { recursive: true });
      for (const dir of [v2, base]) write(join(dir, 'cgroup.subtree_control'), '+memory +cpu +pids');
      return { version: 2, create: (name, limits) => createV2(base, name, limits) };
    } catch {
      // Not delegated to us: try v1.
    }
  }
  const controllers = ['memory', 'cpu', 'pids'].map((c) => join(root, c));
  if (controllers.every((d) => existsSync(join(d, 'cgroup.procs')))) {
    try {
      for (const d of controllers) mkdirSync(join(d, 'microapp'), { recursive: true });
      return { version: 1, create: (name, limits) => createV1(root, name, limits) };
    } catch {
      return null;
    }
  }
  return null;
}

function createV2(base: string, name: string, limits: ResourceLimits): ControlGroup {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  write(join(dir, 'memory.max'), String(limits.memoryMb * 1024 * 1024));
  if (existsSync(join(dir, 'memory.swap.max'))) write(join(dir, 'memory.swap.max'), '0');
  write(join(dir, 'cpu.max'), `${Math.round(limits.cpu * period)} ${period}`);
  write(join(dir, 'pids.max'), String(limits.pids));
  return {
    procs: [join(dir, 'cgroup.procs')],
    oomKills: () => Number(/oom_kill (\d+)/.exec(readFileSync(join(dir, 'memory.events'), 'utf8'))?.[1] ?? 0),
    readBack: () => {
      const [quota, per] = readFileSync(join(dir, 'cpu.max'), 'utf8').trim().split(' ');
      return {
        memoryBytes: Number(readFileSync(join(dir, 'memory.max'), 'utf8')),
        cpuQuotaUs: Number(quota),
        cpuPeriodUs: Number(per),
        pids: Number(readFileSync(join(dir, 'pids.max'), 'utf8')),
      };
    },
    remove: () => removeDirs([dir]),
  };
}

function createV1(root: string, name: string, limits: ResourceLimits): ControlGroup {
  const mem = join(root, 'memory', 'microapp', name);
  const cpu = join(root, 'cpu', 'microapp', name);
  const pids = join(root, 'pids', 'microapp', name);
  for (const d of [mem, cpu, pids]) mkdirSync(d, { recursive: true });
  const bytes = limits.memoryMb * 1024 * 1024;
  write(join(mem, 'memory.limit_in_bytes'), String(bytes));
  // With swap accounting, swap counts against the same limit: no escaping the limit into swap.
  if (existsSync(join(mem, 'memory.memsw.limit_in_bytes')))
    write(join(mem, 'memory.memsw.limit_in_bytes'), String(bytes));
  write(join(cpu, 'cpu.cfs_period_us'), String(period));
  write(join(cpu, 'cpu.cfs_quota_us'), String(Math.round(limits.cpu * period)));
  write(join(pids, 'pids.max'), String(limits.pids));
  return {
    procs: [mem, cpu, pids].map((d) => join(d, 'cgroup.procs')),
    oomKills: () =>
      Number(/oom_kill (\d+)/.exec(readFileSync(join(mem, 'memory.oom_control'), 'utf8'))?.[1] ?? 0),
    readBack: () => ({
      memoryBytes: Number(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8')),
      cpuQuotaUs: Number(readFileSync(join(cpu, 'cpu.cfs_quota_us'), 'utf8')),
      cpuPeriodUs: Number(readFileSync(join(cpu, 'cpu.cfs_period_us'), 'utf8')),
      pids: Number(readFileSync(join(pids, 'pids.max'), 'utf8')),
    }),
    remove: () => removeDirs([mem, cpu, pids]),
  };
}
