// Whether a sandbox can start where the server runs, asked of bubblewrap once at start (`/readyz` reports
// it), and what the people running the platform are told when it cannot. The refusal of a real container
// with a masked /proc is in platform-image.e2e.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { sandboxAdvice, sandboxProblem } from '../src/modules/runtime/sandbox-common.ts';

test('here, where sandboxes run, the probe finds nothing wrong', {
  skip: spawnSync('bwrap', ['--version']).status !== 0 ? 'bubblewrap is not installed' : false,
}, () => {
  assert.equal(sandboxProblem(), null);
});

test("bubblewrap's refusals come with what to change", () => {
  const masked = sandboxAdvice("bwrap: Can't mount proc on /newroot/proc: Operation not permitted\n");
  assert.match(masked, /cannot mount a \/proc of its own \("bwrap: Can't mount proc on \/newroot\/proc/);
  assert.match(masked, /procMount: Unmasked/);
  assert.match(masked, /hostUsers: false/);
  assert.match(masked, /--security-opt unmask=\/proc\/\*/);
  const noUserns = sandboxAdvice(
    'bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces.',
  );
  assert.match(noUserns, /unprivileged user namespaces must be on/);
  assert.match(noUserns, /seccompProfile: Unconfined/);
  assert.doesNotMatch(noUserns, /procMount/);
  // What podman's and Kubernetes' default seccomp profiles do to it (platform-image.e2e.test.ts saw it).
  const seccomp = sandboxAdvice("bwrap: Can't set hostname to probe: Operation not permitted");
  assert.match(seccomp, /refused what a sandbox needs, namespaces of its own and its own host name/);
  assert.match(seccomp, /--security-opt seccomp=unconfined/);
  assert.match(sandboxAdvice(''), /could not start a sandbox: no reason given/);
  // Only bubblewrap's last line is quoted, and not at any length.
  assert.ok(sandboxAdvice(`noise\n${'x'.repeat(5000)}`).length < 600);
});
