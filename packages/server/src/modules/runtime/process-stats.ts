import { readdirSync, readFileSync } from 'node:fs';

/** Memory and CPU of a process and all its descendants, read from Linux's /proc (zeros elsewhere). */
export type ProcessStats = { rssBytes: number; cpuSeconds: number };

const pageSize = 4096;
const ticksPerSecond = 100; // USER_HZ: 100 on every Linux architecture Node.js supports

function stat(pid: number): { state: string; ppid: number; cpuTicks: number; rssPages: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      state: fields[0]!,
      ppid: Number(fields[1]),
      cpuTicks: Number(fields[11]) + Number(fields[12]),
      rssPages: Number(fields[21]),
    };
  } catch {
    return null;
  }
}

/** Every process's stat and children, from one read of /proc; empty where there is no /proc. */
function scan() {
  const stats = new Map<number, NonNullable<ReturnType<typeof stat>>>();
  const children = new Map<number, number[]>();
  let pids: number[] = [];
  try {
    pids = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {}
  for (const pid of pids) {
    const s = stat(pid);
    if (!s) continue;
    stats.set(pid, s);
    (children.get(s.ppid) ?? children.set(s.ppid, []).get(s.ppid)!).push(pid);
  }
  return { stats, children };
}

/** A process and its descendants, from `children` of a scan. */
function treeOf(root: number, children: Map<number, number[]>): number[] {
  const tree: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.pop()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * Sums memory and CPU over each root process's tree (a sandbox is bubblewrap, its helpers and the app),
 * reading /proc once for all roots.
 */
export function processTreeStats(roots: number[]): Map<number, ProcessStats> {
  const { stats, children } = scan();
  const out = new Map<number, ProcessStats>();
  if (stats.size === 0) return out;
  for (const root of roots) {
    let rss = 0;
    let ticks = 0;
    for (const pid of treeOf(root, children)) {
      const s = stats.get(pid);
      if (!s) continue;
      rss += s.rssPages * pageSize;
      ticks += s.cpuTicks;
    }
    out.set(root, { rssBytes: rss, cpuSeconds: ticks / ticksPerSecond });
  }
  return out;
}

/** A process and every descendant it has now, the process first; empty when it is gone. */
export function processTree(root: number): number[] {
  const { stats, children } = scan();
  return stats.has(root) ? treeOf(root, children) : [];
}

/** Whether a process runs: one that has exited and waits for its parent to notice (a zombie) does not. */
export function isRunning(pid: number): boolean {
  const s = stat(pid);
  return s !== null && s.state !== 'Z';
}

/**
 * Kills a process and every descendant it has now (a build's pipeline and the sandboxes under it, with
 * what its tests started on their own), then waits, at most `ms`, until none runs: killing the root
 * alone leaves bubblewrap's children to die a moment later, and a caller that stops on it must not
 * return before they have.
 */
export async function killTree(root: number, ms = 5000): Promise<void> {
  const tree = processTree(root);
  for (const pid of tree)
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  for (const until = Date.now() + ms; tree.some(isRunning) && Date.now() < until; )
    await new Promise((r) => setTimeout(r, 20));
}
