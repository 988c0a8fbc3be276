import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

export type TestRegistry = { url: string; root: string; stop(): Promise<void> };

/**
 * A real OCI registry (CNCF Distribution, Debian's `docker-registry`) on loopback with deletes enabled, its
 * storage in a temporary folder; with `user`, it asks for HTTP Basic (an htpasswd file with a bcrypt hash).
 */
export async function startRegistry(
  options: { user?: { name: string; password: string } } = {},
): Promise<TestRegistry> {
  const root = mkdtempSync(join(tmpdir(), 'microapp-registry-'));
  const port = await freePort();
  let auth = '';
  if (options.user) {
    // Debian's libxcrypt makes bcrypt hashes, which is what the registry's htpasswd reads.
    const hash = execFileSync('python3', [
      '-W',
      'ignore',
      '-c',
      'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))',
      options.user.password,
    ])
      .toString()
      .trim();
    writeFileSync(join(root, 'htpasswd'), `${options.user.name}:${hash}\n`);
    auth = `auth:\n  htpasswd:\n    realm: microapp-test\n    path: ${join(root, 'htpasswd')}\n`;
  }
  const config = join(root, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(root, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${output}`);
    const up = await fetch(`${url}/v2/`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 100) throw new Error(`docker-registry did not answer on ${url}: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    root,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * What a registry client (cosign, oras) finds from an artifact's tag alone: the artifact's manifest, then
 * the index of its referrers, tagged after that manifest's digest (the OCI fallback), and each referrer's
 * manifest with the bytes of its one layer. Empty when there is no index.
 */
export async function referrersOf(
  registry: { url: string },
  user: { name: string; password: string },
  repository: string,
  artifactDigest: string,
): Promise<{
  subject: string;
  items: { name: string; artifactType: string; subject: string; bytes: string }[];
}> {
  const headers = {
    authorization: `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}`,
  };
  const get = (path: string, accept: string) =>
    fetch(`${registry.url}/v2/${repository}/${path}`, { headers: { ...headers, accept } });
  const manifest = 'application/vnd.oci.image.manifest.v1+json';
  const artifact = await get(`manifests/sha256-${artifactDigest.slice(7)}`, manifest);
  if (artifact.status !== 200) throw new Error(`no artifact ${artifactDigest}: HTTP ${artifact.status}`);
  const subject = `sha256:${createHash('sha256')
    .update(Buffer.from(await artifact.arrayBuffer()))
    .digest('hex')}`;
  const index = await get(`manifests/sha256-${subject.slice(7)}`, 'application/vnd.oci.image.index.v1+json');
  if (index.status === 404) return { subject, items: [] };
  const listed = (await index.json()) as { manifests: { digest: string; artifactType: string }[] };
  const items = [];
  for (const m of listed.manifests) {
    const referrer = (await (await get(`manifests/${m.digest}`, manifest)).json()) as {
      subject: { digest: string };
      layers: { digest: string }[];
      annotations: Record<string, string>;
    };
    const layer = await get(`blobs/${referrer.layers[0]!.digest}`, 'application/octet-stream');
    items.push({
      name: referrer.annotations['dev.microapp.bundle'] ?? '',
      artifactType: m.artifactType,
      subject: referrer.subject.digest,
      bytes: await layer.text(),
    });
  }
  return { subject, items };
}
