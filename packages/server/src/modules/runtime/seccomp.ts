import { arch } from 'node:os';

/** System calls the filter refuses with EPERM, by name. */
const deniedNames = [
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'add_key',
  'request_key',
  'keyctl',
  'bpf',
  'perf_event_open',
  'userfaultfd',
  'mount',
  'umount2',
  'pivot_root',
  'setns',
  'unshare',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'init_module',
  'finit_module',
  'delete_module',
  'kexec_load',
  'kexec_file_load',
  'reboot',
  'swapon',
  'swapoff',
  'acct',
  'iopl',
  'ioperm',
  'open_by_handle_at',
  'open_tree',
  'move_mount',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
] as const;

type SyscallTable = Partial<Record<(typeof deniedNames)[number] | 'clone' | 'clone3' | 'ioctl', number>>;

/** The generic table (asm-generic/unistd.h) that arm64 and riscv64 share; they have no iopl or ioperm. */
const generic: SyscallTable = {
  ptrace: 117,
  process_vm_readv: 270,
  process_vm_writev: 271,
  add_key: 217,
  request_key: 218,
  keyctl: 219,
  bpf: 280,
  perf_event_open: 241,
  userfaultfd: 282,
  mount: 40,
  umount2: 39,
  pivot_root: 41,
  setns: 268,
  unshare: 97,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  init_module: 105,
  finit_module: 273,
  delete_module: 106,
  kexec_load: 104,
  kexec_file_load: 294,
  reboot: 142,
  swapon: 224,
  swapoff: 225,
  acct: 89,
  open_by_handle_at: 265,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  mount_setattr: 442,
  clone: 220,
  clone3: 435,
  ioctl: 29,
};

/**
 * Each architecture the filter knows: its AUDIT_ARCH value (any other ABI is killed) and its system call
 * numbers (x86-64 from asm/unistd_64.h, the others from asm-generic/unistd.h; a test reads both headers).
 */
export const seccompArchitectures: Record<string, { audit: number; x32: boolean; table: SyscallTable }> = {
  x64: {
    audit: 0xc000003e,
    x32: true,
    table: {
      ptrace: 101,
      process_vm_readv: 310,
      process_vm_writev: 311,
      add_key: 248,
      request_key: 249,
      keyctl: 250,
      bpf: 321,
      perf_event_open: 298,
      userfaultfd: 323,
      mount: 165,
      umount2: 166,
      pivot_root: 155,
      setns: 308,
      unshare: 272,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
      init_module: 175,
      finit_module: 313,
      delete_module: 176,
      kexec_load: 246,
      kexec_file_load: 320,
      reboot: 169,
      swapon: 167,
      swapoff: 168,
      acct: 163,
      iopl: 172,
      ioperm: 173,
      open_by_handle_at: 304,
      open_tree: 428,
      move_mount: 429,
      fsopen: 430,
      fsconfig: 431,
      fsmount: 432,
      fspick: 433,
      mount_setattr: 442,
      clone: 56,
      clone3: 435,
      ioctl: 16,
    },
  },
  arm64: { audit: 0xc00000b7, x32: false, table: generic },
  riscv64: { audit: 0xc00000f3, x32: false, table: generic },
};

/**
 * The sandbox's seccomp filter, as the classic BPF program bubblewrap loads with `--seccomp FD`. It refuses
 * (EPERM) the system calls an app never needs and an escape often does: tracing and reading other
 * processes, kernel keyrings, BPF and perf, userfaultfd, mounts and pivot_root, new namespaces (unshare,
 * setns, clone with namespace flags; clone3 answers ENOSYS so the C library falls back to clone), io_uring,
 * kernel modules, kexec, reboot, swap, accounting, raw port I/O, file handles by id, and the terminal
 * ioctls that push input into another program (TIOCSTI, TIOCLINUX; the command is compared on its low 32
 * bits, as the kernel reads it). Any ABI but the machine's own is killed (no x32, i386 or arm32 detours).
 * x86-64, arm64 and riscv64; null on other architectures: the sandbox then runs without a filter, and the
 * server says so.
 */
export function seccompFilter(machine: string = arch()): Buffer | null {
  const known = seccompArchitectures[machine];
  if (!known) return null;
  const { table } = known;
  const denied = deniedNames.flatMap((n) => (table[n] === undefined ? [] : [table[n]!]));
  const CLONE = table.clone!;
  const CLONE3 = table.clone3!;
  const IOCTL = table.ioctl!;
  const TIOCSTI = 0x5412;
  const TIOCLINUX = 0x541c;
  const namespaceFlags =
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
  const LD_ABS = 0x20;
  const JEQ = 0x15;
  const JGE = 0x35;
  const JSET = 0x45;
  const RET = 0x06;
  const ALLOW = 0x7fff0000;
  const EPERM = 0x00050000 | 1;
  const ENOSYS = 0x00050000 | 38;
  const KILL = 0x80000000;

  type Insn = { code: number; jt: number | string; jf: number | string; k: number };
  const prog: (Insn | { label: string })[] = [
    { code: LD_ABS, jt: 0, jf: 0, k: 4 }, // arch
    { code: JEQ, jt: 1, jf: 0, k: known.audit }, // this machine's own ABI
    { code: RET, jt: 0, jf: 0, k: KILL },
    { code: LD_ABS, jt: 0, jf: 0, k: 0 }, // syscall number
    ...(known.x32 ? [{ code: JGE, jt: 'deny', jf: 0, k: 0x40000000 }] : []), // the x32 ABI
    ...denied.map((nr) => ({ code: JEQ, jt: 'deny', jf: 0, k: nr })),
    { code: JEQ, jt: 'nosys', jf: 0, k: CLONE3 },
    { code: JEQ, jt: 'ioctl', jf: 0, k: IOCTL },
    { code: JEQ, jt: 0, jf: 'allow', k: CLONE },
    { code: LD_ABS, jt: 0, jf: 0, k: 16 }, // clone's flags (low word of args[0])
    { code: JSET, jt: 'deny', jf: 'allow', k: namespaceFlags },
    { label: 'ioctl' },
    { code: LD_ABS, jt: 0, jf: 0, k: 24 }, // the ioctl's command (low word of args[1])
    { code: JEQ, jt: 'deny', jf: 0, k: TIOCSTI },
    { code: JEQ, jt: 'deny', jf: 'allow', k: TIOCLINUX },
    { label: 'allow' },
    { code: RET, jt: 0, jf: 0, k: ALLOW },
    { label: 'deny' },
    { code: RET, jt: 0, jf: 0, k: EPERM },
    { label: 'nosys' },
    { code: RET, jt: 0, jf: 0, k: ENOSYS },
  ];
  const labels = new Map<string, number>();
  const insns: Insn[] = [];
  for (const p of prog) {
    if ('label' in p) labels.set(p.label, insns.length);
    else insns.push(p);
  }
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, i) => {
    const jump = (j: number | string) => {
      if (typeof j === 'number') return j;
      const offset = labels.get(j)! - (i + 1);
      if (offset < 0 || offset > 255) throw new Error(`seccomp: jump to ${j} out of range`);
      return offset;
    };
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(jump(insn.jt), i * 8 + 2);
    out.writeUInt8(jump(insn.jf), i * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return out;
}
