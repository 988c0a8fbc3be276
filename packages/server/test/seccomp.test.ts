import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { seccompArchitectures, seccompFilter } from '../src/modules/runtime/seccomp.ts';

/**
 * Runs a classic BPF program the way the kernel runs a seccomp filter, over a `struct seccomp_data`
 * (nr, arch, instruction pointer, six 64-bit arguments; little-endian). Only the instructions a seccomp
 * filter of ours may hold are known; anything else fails the test.
 */
function run(program: Buffer, data: { nr: number; arch: number; args?: bigint[] }): number {
  const mem = Buffer.alloc(64);
  mem.writeUInt32LE(data.nr >>> 0, 0);
  mem.writeUInt32LE(data.arch >>> 0, 4);
  (data.args ?? []).forEach((a, i) => mem.writeBigUInt64LE(a, 16 + i * 8));
  let acc = 0;
  for (let pc = 0, steps = 0; steps < 10_000; steps++) {
    assert.ok(pc * 8 < program.length, 'the program ran off its end');
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: // BPF_LD | BPF_W | BPF_ABS
        assert.ok(k % 4 === 0 && k < 64, `a load at ${k}`);
        acc = mem.readUInt32LE(k);
        break;
      case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
        pc += acc === k ? jt : jf;
        break;
      case 0x35: // BPF_JMP | BPF_JGE | BPF_K
        pc += acc >= k ? jt : jf;
        break;
      case 0x45: // BPF_JMP | BPF_JSET | BPF_K
        pc += (acc & k) !== 0 ? jt : jf;
        break;
      case 0x06: // BPF_RET | BPF_K
        return k;
      default:
        assert.fail(`an instruction a seccomp filter of ours does not use: ${code.toString(16)}`);
    }
  }
  return assert.fail('the program did not end');
}

const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;
const KILL = 0x80000000;

/** `#define __NR_name number` lines of a kernel header, when this machine has it (linux-libc-dev). */
function header(file: string): Map<string, number> | null {
  if (!existsSync(file)) return null;
  const out = new Map<string, number>();
  for (const m of readFileSync(file, 'utf8').matchAll(/^#define __NR(?:3264)?_(\w+)\s+(\d+)\s*$/gm))
    out.set(m[1]!, Number(m[2]));
  return out;
}

describe('the seccomp filter', () => {
  test('its system call numbers are the kernel’s own, for every architecture it knows', (t) => {
    const headers: Record<string, string> = {
      x64: '/usr/include/x86_64-linux-gnu/asm/unistd_64.h',
      arm64: '/usr/include/asm-generic/unistd.h',
      riscv64: '/usr/include/asm-generic/unistd.h',
    };
    let checked = 0;
    for (const [machine, { table }] of Object.entries(seccompArchitectures)) {
      const numbers = header(headers[machine]!);
      if (!numbers) {
        t.diagnostic(`no ${headers[machine]} here: ${machine}'s numbers not checked`);
        continue;
      }
      for (const [name, nr] of Object.entries(table)) {
        assert.equal(nr, numbers.get(name), `${machine} ${name}`);
        checked++;
      }
    }
    assert.ok(checked > 0 || !existsSync('/usr/include/asm-generic/unistd.h'));
  });

  for (const [machine, { audit, table }] of Object.entries(seccompArchitectures))
    test(`on ${machine}: what it refuses, what it lets through, and other ABIs killed`, () => {
      const program = seccompFilter(machine)!;
      assert.ok(program.length > 0 && program.length % 8 === 0);
      const call = (nr: number, args: bigint[] = []) => run(program, { nr, arch: audit, args });
      for (const name of ['ptrace', 'bpf', 'unshare', 'setns', 'mount', 'keyctl', 'io_uring_setup'] as const)
        assert.equal(call(table[name]!), EPERM, name);
      // read, write and exit are allowed on every table (x86-64: 0, 1, 60; generic: 63, 64, 93).
      for (const nr of machine === 'x64' ? [0, 1, 60] : [63, 64, 93])
        assert.equal(call(nr), ALLOW, String(nr));
      const CLONE_NEWUSER = 0x10000000n;
      const SIGCHLD = 17n;
      assert.equal(call(table.clone!, [SIGCHLD]), ALLOW, 'fork');
      assert.equal(call(table.clone!, [0x3d0f00n]), ALLOW, 'a thread');
      assert.equal(call(table.clone!, [CLONE_NEWUSER | SIGCHLD]), EPERM, 'a new user namespace');
      assert.equal(call(table.clone3!), ENOSYS, 'clone3, so the C library uses clone');
      assert.equal(call(table.ioctl!, [1n, 0x5412n]), EPERM, 'TIOCSTI');
      assert.equal(call(table.ioctl!, [1n, 0x541cn]), EPERM, 'TIOCLINUX');
      assert.equal(call(table.ioctl!, [1n, 0xffffffff00005412n]), EPERM, 'TIOCSTI with the upper bits set');
      assert.equal(call(table.ioctl!, [1n, 0x5401n]), ALLOW, 'TCGETS');
      const other = audit === 0xc000003e ? 0x40000003 : 0xc000003e; // i386 on x86-64, x86-64 elsewhere
      assert.equal(run(program, { nr: 0, arch: other }), KILL, 'another ABI');
      if (machine === 'x64') assert.equal(call(0x40000000 + 1), EPERM, 'the x32 ABI');
    });

  test('an architecture it does not know gets no filter (and the server says so)', () => {
    assert.equal(seccompFilter('mips'), null);
  });
});
