import { type BlobKind, BlobMissingError, type BlobStore, digestOf, hexOf, verified } from './blob-store.ts';

/** Where the registry is and how to sign in to it (MICROAPP_BLOB_REGISTRY and its credentials). */
export type OciRegistrySettings = {
  /** `https://registry.example.com/microapp`: the registry and the repository prefix blobs go under. */
  url: string;
  username: string | null;
  password: string | null;
};

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';
/** Sigstore's media type for a bundle, which cosign and the OCI referrers API know it by. */
export const sigstoreBundleType = 'application/vnd.dev.sigstore.bundle.v0.3+json';
// The OCI empty descriptor: artifacts carry no image configuration.
const empty = { mediaType: 'application/vnd.oci.empty.v1+json', bytes: Buffer.from('{}') };
const types: Record<BlobKind, { repository: string; artifactType: string; layer: string }> = {
  artifact: {
    repository: 'artifacts',
    artifactType: 'application/vnd.microapp.artifact.v1',
    layer: 'application/vnd.microapp.artifact.v1.tar+gzip',
  },
  archive: {
    repository: 'archives',
    artifactType: 'application/vnd.microapp.archive.v1',
    layer: 'application/vnd.microapp.archive.v1.sealed',
  },
  pack: {
    repository: 'repo-packs',
    artifactType: 'application/vnd.microapp.git-pack.v1',
    layer: 'application/x-git-packfile',
  },
};

/**
 * The manifest that keeps a blob referenced in the registry (a registry's garbage collection deletes blobs
 * no manifest names), tagged `sha256-HEX` after the blob. It has no timestamp, so the same blob always gives
 * the same manifest, and a second replica's push of it changes nothing.
 */
export function manifestFor(kind: BlobKind, digest: string, size: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifest,
      artifactType: types[kind].artifactType,
      config: { mediaType: empty.mediaType, digest: digestOf(empty.bytes), size: empty.bytes.length },
      layers: [
        {
          mediaType: types[kind].layer,
          digest,
          size,
          annotations: { 'org.opencontainers.image.title': `${hexOf(digest)}` },
        },
      ],
    }),
  );
}

/**
 * A Sigstore bundle as an OCI artifact whose `subject` is the artifact's manifest: a referrer, found from
 * the artifact by the referrers API (or its tag fallback), without any other index.
 */
export function referrerFor(
  subject: { digest: string; size: number },
  bundle: { digest: string; size: number },
  name: string,
): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifest,
      artifactType: sigstoreBundleType,
      config: { mediaType: empty.mediaType, digest: digestOf(empty.bytes), size: empty.bytes.length },
      layers: [{ mediaType: sigstoreBundleType, digest: bundle.digest, size: bundle.size }],
      subject: { mediaType: ociManifest, ...subject },
      annotations: { 'dev.microapp.bundle': name },
    }),
  );
}

/** A digest that is safe in a URL path: `sha256:` and 64 hex digits. */
function checked(digest: string): string {
  hexOf(digest);
  return digest;
}

type Challenge = { realm: string; service?: string; scope?: string };

function bearerChallenge(header: string | null): Challenge | null {
  if (!header?.toLowerCase().startsWith('bearer ')) return null;
  const params = Object.fromEntries(
    [...header.slice(7).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]),
  );
  return params.realm ? (params as Challenge) : null;
}

/**
 * Blobs as OCI artifacts in a registry (CNCF Distribution, Harbor, a cloud registry): each blob is a layer of
 * an artifact manifest, by digest, in `PREFIX/artifacts` or `PREFIX/archives`, so the registry that serves the
 * platform's images holds them too and every replica reads the same bytes. Speaks the OCI distribution API:
 * HTTP Basic, or the bearer-token exchange a registry asks for with its `WWW-Authenticate` challenge.
 * @example createOciBlobStore({ url: 'https://registry.internal/microapp', username: 'microapp', password })
 */
export function createOciBlobStore(settings: OciRegistrySettings): BlobStore {
  const url = new URL(settings.url);
  const base = url.origin;
  const prefix = url.pathname.replace(/^\/+|\/+$/g, '');
  const repositoryOf = (kind: BlobKind) => [prefix, types[kind].repository].filter(Boolean).join('/');
  const basic =
    settings.username !== null
      ? `Basic ${Buffer.from(`${settings.username}:${settings.password ?? ''}`).toString('base64')}`
      : null;
  const tokens = new Map<string, { value: string; until: number }>();
  // The kinds whose repository holds the OCI empty descriptor every manifest names, as this process last
  // saw: looked up once, not before every put.
  const emptyIn = new Set<BlobKind>();

  async function bearer(challenge: Challenge): Promise<string> {
    const key = `${challenge.realm} ${challenge.scope ?? ''}`;
    const cached = tokens.get(key);
    if (cached && cached.until > Date.now()) return cached.value;
    const at = new URL(challenge.realm);
    if (challenge.service) at.searchParams.set('service', challenge.service);
    if (challenge.scope) at.searchParams.set('scope', challenge.scope);
    const res = await fetch(at, {
      headers: basic ? { authorization: basic } : {},
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok)
      throw new Error(
        `the registry's token service ${at.origin} refused the blob store's credentials (HTTP ${res.status})`,
      );
    const body = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
    const value = body.token ?? body.access_token;
    if (!value) throw new Error(`the registry's token service ${at.origin} answered without a token`);
    tokens.set(key, { value, until: Date.now() + Math.max(30, (body.expires_in ?? 60) - 10) * 1000 });
    return value;
  }

  /** One call to the registry, signing in as its challenge asks; a body is a Buffer so it can be sent twice. */
  async function send(
    method: string,
    path: string,
    init: { body?: Buffer; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Response> {
    const target = path.startsWith('http') ? path : `${base}${path}`;
    if (new URL(target).origin !== base)
      throw new Error(`the registry sent the blob store to another host (${new URL(target).origin})`);
    const attempt = (authorization: string | null) =>
      fetch(target, {
        method,
        headers: { ...(init.headers ?? {}), ...(authorization ? { authorization } : {}) },
        body: init.body,
        signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
      });
    let res = await attempt(basic);
    if (res.status === 401) {
      const challenge = bearerChallenge(res.headers.get('www-authenticate'));
      await res.body?.cancel();
      if (!challenge)
        throw new Error(
          `the registry ${base} refused the blob store's credentials (HTTP 401): check MICROAPP_BLOB_REGISTRY_USERNAME and MICROAPP_BLOB_REGISTRY_PASSWORD`,
        );
      res = await attempt(`Bearer ${await bearer(challenge)}`);
    }
    return res;
  }

  async function expect(res: Response, ok: number[], what: string): Promise<Response> {
    if (ok.includes(res.status)) return res;
    const detail = (await res.text().catch(() => '')).slice(0, 300);
    throw new Error(`the registry ${base} failed to ${what}: HTTP ${res.status} ${detail}`.trim());
  }

  async function has(kind: BlobKind, digest: string): Promise<boolean> {
    const res = await send('HEAD', `/v2/${repositoryOf(kind)}/blobs/${digest}`);
    await expect(res, [200, 404], `look up ${digest}`);
    return res.status === 200;
  }

  async function upload(kind: BlobKind, digest: string, bytes: Buffer) {
    if (await has(kind, digest)) return;
    const start = await expect(
      await send('POST', `/v2/${repositoryOf(kind)}/blobs/uploads/`, { headers: { 'content-length': '0' } }),
      [202],
      `start an upload of ${digest}`,
    );
    await start.body?.cancel();
    const location = start.headers.get('location');
    if (!location) throw new Error(`the registry ${base} started an upload without saying where it goes`);
    const target = new URL(location, base);
    target.searchParams.set('digest', digest);
    const done = await send('PUT', target.href, {
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
      timeoutMs: 300_000,
    });
    await expect(done, [201], `store ${digest}`);
    await done.body?.cancel();
  }

  return {
    where: `${base}/${prefix}`,
    async put(kind, bytes) {
      const digest = digestOf(bytes);
      if (!emptyIn.has(kind)) {
        await upload(kind, digestOf(empty.bytes), empty.bytes);
        emptyIn.add(kind);
      }
      await upload(kind, digest, bytes);
      const record = () =>
        send('PUT', `/v2/${repositoryOf(kind)}/manifests/sha256-${hexOf(digest)}`, {
          body: manifestFor(kind, digest, bytes.length),
          headers: { 'content-type': ociManifest },
        });
      let manifest = await record();
      if (manifest.status === 400) {
        const detail = await manifest.text().catch(() => '');
        if (!detail.includes('BLOB_UNKNOWN'))
          throw new Error(
            `the registry ${base} failed to record the manifest of ${digest}: HTTP 400 ${detail.slice(0, 300)}`,
          );
        // The registry lost the empty descriptor since this process stored it (its garbage collection):
        // stored again, and the manifest with it.
        await upload(kind, digestOf(empty.bytes), empty.bytes);
        manifest = await record();
      }
      await expect(manifest, [201], `record the manifest of ${digest}`);
      await manifest.body?.cancel();
      return digest;
    },
    async get(kind, digest) {
      const res = await send('GET', `/v2/${repositoryOf(kind)}/blobs/${checked(digest)}`, {
        timeoutMs: 300_000,
      });
      if (res.status === 404) {
        await res.body?.cancel();
        throw new BlobMissingError(kind, digest);
      }
      await expect(res, [200], `read ${digest}`);
      return verified(kind, digest, Buffer.from(await res.arrayBuffer()));
    },
    has: (kind, digest) => has(kind, checked(digest)),
    async attach(artifact, bundles) {
      const repository = repositoryOf('artifact');
      const manifest = manifestFor('artifact', checked(artifact.digest), artifact.size);
      const subject = { digest: digestOf(manifest), size: manifest.length };
      const pushed: {
        mediaType: string;
        digest: string;
        size: number;
        artifactType: string;
        annotations: Record<string, string>;
      }[] = [];
      let indexed = false;
      for (const { name, bundle } of bundles) {
        const bytes = Buffer.from(JSON.stringify(bundle));
        const digest = digestOf(bytes);
        await upload('artifact', digest, bytes);
        const referrer = referrerFor(subject, { digest, size: bytes.length }, name);
        const at = digestOf(referrer);
        const res = await send('PUT', `/v2/${repository}/manifests/${at}`, {
          body: referrer,
          headers: { 'content-type': ociManifest },
        });
        await expect(res, [201], `record the ${name} bundle of ${artifact.digest}`);
        await res.body?.cancel();
        // A registry with the referrers API says so, and lists the referrer itself.
        indexed ||= res.headers.get('oci-subject') === subject.digest;
        pushed.push({
          mediaType: ociManifest,
          digest: at,
          size: referrer.length,
          artifactType: sigstoreBundleType,
          annotations: { 'dev.microapp.bundle': name },
        });
      }
      if (indexed || !pushed.length) return;
      // Otherwise the OCI fallback: an index of the referrers, tagged after the subject's digest.
      const tag = `/v2/${repository}/manifests/sha256-${hexOf(subject.digest)}`;
      const current = await send('GET', tag, { headers: { accept: ociIndex } });
      await expect(current, [200, 404], `read the referrers of ${artifact.digest}`);
      const listed =
        current.status === 200
          ? (((await current.json()) as { manifests?: typeof pushed }).manifests ?? [])
          : (await current.body?.cancel(), []);
      const manifests = [...listed.filter((m) => !pushed.some((p) => p.digest === m.digest)), ...pushed];
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: ociIndex, manifests }));
      const res = await send('PUT', tag, { body: index, headers: { 'content-type': ociIndex } });
      await expect(res, [201], `record the referrers of ${artifact.digest}`);
      await res.body?.cancel();
    },
    async remove(kind, digest) {
      // The manifest is deleted by its own digest, which the registry reports.
      const head = await send('HEAD', `/v2/${repositoryOf(kind)}/manifests/sha256-${hexOf(digest)}`, {
        headers: { accept: ociManifest },
      });
      if (head.status === 200) {
        const at = head.headers.get('docker-content-digest');
        if (at) {
          const res = await send('DELETE', `/v2/${repositoryOf(kind)}/manifests/${at}`);
          await expect(
            res,
            [202, 404],
            `delete the manifest of ${digest} (is deletion enabled in the registry?)`,
          );
        }
      } else await expect(head, [404], `look up the manifest of ${digest}`);
      const blob = await send('DELETE', `/v2/${repositoryOf(kind)}/blobs/${checked(digest)}`);
      await expect(blob, [202, 404], `delete ${digest} (is deletion enabled in the registry?)`);
    },
    async check() {
      const res = await send('GET', '/v2/');
      await expect(res, [200], 'answer its API check (GET /v2/)');
      await res.body?.cancel();
    },
  };
}
