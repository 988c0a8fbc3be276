// Podman and buildah for tests, as they run on this kind of machine: from a mount namespace of their own in
// which the cgroup2 mount at /sys/fs/cgroup/unified is gone (crun refuses the "hybrid" layout otherwise),
// on cgroup v1 through cgroupfs, with explicit ulimits.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const conf = join(mkdtempSync(join(tmpdir(), 'microapp-podman-')), 'containers.conf');
writeFileSync(
  conf,
  `[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
`,
);

export type Ran = { code: number; stdout: string; stderr: string };

/** Runs `tool` (podman, buildah, or a shell script with `sh`) in a mount namespace of its own. */
export function contained(
  tool: 'podman' | 'buildah' | 'sh',
  args: string[],
  timeoutMs = 180_000,
): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(
      'unshare',
      ['-m', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', 'sh', tool, ...args],
      { env: { ...process.env, CONTAINERS_CONF: conf }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/**
 * The runtime image for apps, built with buildah from nothing but this machine's own Node.js and tar (no
 * registry is reachable here): what `MICROAPP_KUBERNETES_RUNTIME_IMAGE` names, pinned by its digest.
 * /app, /data and /run/egress (the egress sidecar's socket) belong to the pods' user (65534), since podman
 * does not apply a pod's fsGroup to volumes.
 */
export async function buildRuntimeImage(name = 'localhost/microapp-node-test:20'): Promise<string> {
  const script = `set -e
ctr=$(buildah from scratch)
mnt=$(buildah mount "$ctr")
mkdir -p "$mnt/usr/bin" "$mnt/bin" "$mnt/lib/x86_64-linux-gnu" "$mnt/lib64" "$mnt/tmp" "$mnt/app" "$mnt/data" "$mnt/etc" "$mnt/run/egress"
cp "$(readlink -f "$(command -v node)")" "$mnt/usr/bin/node"
cp "$(command -v tar)" "$mnt/usr/bin/tar"
for lib in $(ldd "$(command -v node)" "$(command -v tar)" | grep -o '/lib[^ ]*'); do cp -L "$lib" "$mnt$lib"; done
chown 65534:65534 "$mnt/app" "$mnt/data" "$mnt/run/egress"
chmod 1777 "$mnt/tmp"
echo 'nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin' > "$mnt/etc/passwd"
echo 'nogroup:x:65534:' > "$mnt/etc/group"
buildah umount "$ctr"
buildah config --env PATH=/usr/bin:/bin --user 65534:65534 "$ctr"
buildah commit --quiet "$ctr" ${name} > /dev/null
buildah rm "$ctr" > /dev/null
`;
  // The previous build of it goes first, so that runs do not pile up untagged images.
  await contained('podman', ['rmi', '--force', '--ignore', name]);
  const built = await contained('sh', ['-c', script]);
  if (built.code !== 0) throw new Error(`buildah could not build the runtime image: ${built.stderr}`);
  const inspected = await contained('podman', ['image', 'inspect', name, '--format', '{{.Digest}}']);
  const digest = inspected.stdout.trim();
  if (inspected.code !== 0 || !/^sha256:[a-f0-9]{64}$/.test(digest))
    throw new Error(`the runtime image has no digest: ${inspected.stderr}`);
  return `${name.replace(/:[^/:]+$/, '')}@${digest}`;
}
