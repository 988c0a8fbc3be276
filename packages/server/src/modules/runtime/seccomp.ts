import { arch } from 'node:os';

/**
 * The sandbox's seccomp filter, as the classic BPF program bubblewrap loads with `--seccomp FD`. It refuses
 * (EPERM) the system calls an app never needs and an escape often does: tracing and reading other
 * processes, kernel keyrings, BPF and perf, userfaultfd, mounts and pivot_root, new namespaces (unshare,
 * setns, clone with namespace flags; clone3 answers ENOSYS so the C library falls back to clone), io_uring,
 * kernel modules, kexec, reboot, swap, accounting, raw port I/O and file handles by id. Anything but the
 * x86-64 ABI is killed (no x32 or i386 detours). Null on other architectures: the sandbox then runs without
 * a filter, and the server says so.
 */
export function seccompFilter(): Buffer | null {
  if (arch() !== 'x64') return null;
  const denied = [
    101, // ptrace
    310, // process_vm_readv
    311, // process_vm_writev
    248, // add_key
    249, // request_key
    250, // keyctl
    321, // bpf
    298, // perf_event_open
    323, // userfaultfd
    165, // mount
    166, // umount2
    155, // pivot_root
    308, // setns
    272, // unshare
    425, // io_uring_setup
    426, // io_uring_enter
    427, // io_uring_register
    175, // init_module
    313, // finit_module
    176, // delete_module
    246, // kexec_load
    320, // kexec_file_load
    169, // reboot
    167, // swapon
    168, // swapoff
    163, // acct
    172, // iopl
    173, // ioperm
    304, // open_by_handle_at
    428, // open_tree
    429, // move_mount
    430, // fsopen
    431, // fsconfig
    432, // fsmount
    433, // fspick
    442, // mount_setattr
  ];
  const CLONE = 56;
  const CLONE3 = 435;
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
    { code: JEQ, jt: 1, jf: 0, k: 0xc000003e }, // AUDIT_ARCH_X86_64
    { code: RET, jt: 0, jf: 0, k: KILL },
    { code: LD_ABS, jt: 0, jf: 0, k: 0 }, // syscall number
    { code: JGE, jt: 'deny', jf: 0, k: 0x40000000 }, // the x32 ABI
    ...denied.map((nr) => ({ code: JEQ, jt: 'deny', jf: 0, k: nr })),
    { code: JEQ, jt: 'nosys', jf: 0, k: CLONE3 },
    { code: JEQ, jt: 0, jf: 'allow', k: CLONE },
    { code: LD_ABS, jt: 0, jf: 0, k: 16 }, // clone's flags (low word of args[0])
    { code: JSET, jt: 'deny', jf: 'allow', k: namespaceFlags },
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
