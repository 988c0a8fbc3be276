import { existsSync } from 'node:fs';

/**
 * What of /proc an app has no need for and would learn host details from: the kernel's command line,
 * timers and symbols (with the host's addresses), keys, scheduler and latency statistics, the kernel's
 * log, and ACPI and SCSI hardware. Files are covered by an unreadable node, folders by an empty tmpfs.
 */
const maskedProc = {
  files: [
    'cmdline',
    'timer_list',
    'timer_stats',
    'sched_debug',
    'kallsyms',
    'kcore',
    'keys',
    'key-users',
    'latency_stats',
    'modules',
    'kmsg',
    'sysrq-trigger',
    'config.gz',
    'interrupts',
    'iomem',
    'ioports',
    'vmallocinfo',
    'pagetypeinfo',
    'buddyinfo',
    'zoneinfo',
    'slabinfo',
    'lockdep',
  ],
  dirs: ['acpi', 'scsi', 'bus', 'irq', 'sys/kernel/debug', 'driver', 'tty', 'fs'],
};

/** bubblewrap arguments that mask those, for the paths this kernel has. */
export function procMasks(): string[] {
  return [
    ...maskedProc.files
      .filter((f) => existsSync(`/proc/${f}`))
      .flatMap((f) => ['--ro-bind', '/dev/null', `/proc/${f}`]),
    ...maskedProc.dirs.filter((d) => existsSync(`/proc/${d}`)).flatMap((d) => ['--tmpfs', `/proc/${d}`]),
  ];
}
