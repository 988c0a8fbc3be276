import { readdirSync, readFileSync } from 'node:fs';

/** Memory and CPU of a process and all its descendants, read from Linux's /proc (zeros elsewhere). */
export type ProcessStats = { rssBytes: number; cpuSeconds: number };

const pageSize = 4096;
const ticksPerSecond = 100; // USER_HZ: 100 on every Linux architecture Node.js supports

function stat(pid: number): { ppid: number; cpuTicks: number; rssPages: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(fields[1]),
      cpuTicks: Number(fields[11]) + Number(fields[12]),
      rssPages: Number(fields[21]),
    };
  } catch {
    return null;
  }
}

/**
 * Sums memory and CPU over each root process's tree (a sandbox is bubblewrap, its helpers and the app),
 * reading /proc once for all roots.
 */
export function processTreeStats(roots: number[]): Map<number, ProcessStats> {
  const out = new Map<number, ProcessStats>();
  let pids: number[];
  try {
    pids = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return out;
  }
  const stats = new Map<number, NonNullable<ReturnType<typeof stat>>>();
  const children = new Map<number, number[]>();
  for (const pid of pids) {
    const s = stat(pid);
    if (!s) continue;
    stats.set(pid, s);
    (children.get(s.ppid) ?? children.set(s.ppid, []).get(s.ppid)!).push(pid);
  }
  for (const root of roots) {
    let rss = 0;
    let ticks = 0;
    const queue = [root];
    while (queue.length) {
      const pid = queue.pop()!;
      const s = stats.get(pid);
      if (!s) continue;
      rss += s.rssPages * pageSize;
      ticks += s.cpuTicks;
      queue.push(...(children.get(pid) ?? []));
    }
    out.set(root, { rssBytes: rss, cpuSeconds: ticks / ticksPerSecond });
  }
  return out;
}
